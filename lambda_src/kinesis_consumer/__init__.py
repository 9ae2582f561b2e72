"""The kinesis-consumer Lambda function (handler: kinesis_consumer.handler.lambda_handler)."""
