"""What a run writes: metrics.json, class_weights.json, tables, plots, sweep summaries."""
