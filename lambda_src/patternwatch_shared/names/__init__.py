"""Names that the infrastructure and the handlers must agree on, defined once, one module per topic.

The CDKTF constructs import these to set environment variables, key schemas, routes and dashboard
metrics; the handlers import them to read the same things. Changing a name here changes both sides.

- `functions`: one spec per Lambda function (every spelling of its name derives from it) and the
  environment variable keys the functions read;
- `table`: the DynamoDB key design of TradingPatterns and ApprovalTracking;
- `metrics`: the CloudWatch namespace, metric names and dimensions the handlers emit;
- `messages`: fields and values of events and messages: stream bars, alerts (sources, severities),
  approvals (actions, statuses), workflow actions, the EventBridge pattern event;
- `routes`: the REST API's paths, in API Gateway and in Powertools syntax.

Import from the topic module (`from patternwatch_shared.names.metrics import METRICS_NAMESPACE`); this
package re-exports nothing.
"""
