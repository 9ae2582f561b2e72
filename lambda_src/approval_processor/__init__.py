"""The approval-processor Lambda function (handler: approval_processor.handler.lambda_handler)."""
