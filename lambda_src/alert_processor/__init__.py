"""The alert-processor Lambda function (handler: alert_processor.handler.lambda_handler)."""
