"""The keyword FAQ engine: plain functions over data (text, match, tables, store)."""
