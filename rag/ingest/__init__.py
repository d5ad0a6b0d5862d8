"""Stages 1-2: find and read PDFs (``pdf``; ruled tables as one line per row with headers: ``tables``),
split them into nodes per retriever kind (``parse``)."""
