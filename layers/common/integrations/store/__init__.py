"""DynamoDB and Secrets Manager adapters behind small interfaces."""
