"""The approval-expiry Lambda function (handler: approval_expiry.handler.lambda_handler)."""
