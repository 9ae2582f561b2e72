"""Code shared by every PatternWatch Lambda function and by the infrastructure that deploys them."""
