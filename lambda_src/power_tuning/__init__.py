"""Lambda power tuning: measure a function at several memory sizes and pick one by cost, speed or both.

Modelled on the open-source aws-lambda-power-tuning project (alexcasalboni/aws-lambda-power-tuning):
an initializer publishes one version and alias per memory value, an executor invokes each alias and
reads the billed duration from the REPORT log line, a cleaner removes what the initializer made, and an
analyzer prices each value and chooses. Unlike the reference project it never applies the choice: memory
is configuration (envs/<env>.json), so a person changes it there and deploys.
"""
