"""Tables: a user's CSV/Parquet file and the bundled ones (`synthetic`, `digits`), as float features."""
