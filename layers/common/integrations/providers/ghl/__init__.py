"""GoHighLevel: connect (identity, pipelines, stages), app webhooks and workflow calls."""
