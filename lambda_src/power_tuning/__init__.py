"""Lambda power tuning: measure a function at several memory sizes and pick one by cost, speed or both.

Modelled on the open-source aws-lambda-power-tuning project (alexcasalboni/aws-lambda-power-tuning):
an initializer publishes one version and alias per memory value, an executor invokes each alias and
reads the billed duration from the REPORT log line, a cleaner removes what the initializer made, an
analyzer prices each value and chooses, and an optional optimizer applies the choice.
"""
