"""The threshold-checker Lambda function (handler: threshold_checker.handler.lambda_handler)."""
