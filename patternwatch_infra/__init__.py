"""PatternWatch infrastructure: one CDKTF construct per layer (data, compute, api, orchestration, monitoring).

The package is deliberately not called `constructs`: that name belongs to the constructs library that
CDKTF itself imports, and a local package of the same name would shadow it.
"""
