"""Views: what a person reads of a checked network (folded rows, the report, the text summary)."""
