"""The default answerer, which quotes: candidates -> features -> model -> composer."""
