"""Every AWS adapter (DynamoDB, KMS, Secrets Manager, EventBridge, SQS); AWS errors become ours."""
