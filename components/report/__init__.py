"""The study's report: sections gathered from the steps' artifacts, figures, Markdown and HTML."""
