"""Files people bring in: PDFs and text files, read into prompt fields."""
