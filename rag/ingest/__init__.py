"""Stages 1-2: find and read PDFs (``pdf``), split them into nodes per retriever kind (``parse``)."""
