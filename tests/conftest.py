"""Settings every test process needs."""
import os

# jsii prints a Node 20 end-of-life banner on import; it says nothing about our code.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
