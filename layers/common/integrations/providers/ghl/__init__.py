"""GoHighLevel: connect (identity, pipelines and stages)."""
