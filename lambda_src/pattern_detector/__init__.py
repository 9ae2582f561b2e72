"""The pattern-detector Lambda function (handler: pattern_detector.handler.lambda_handler)."""
