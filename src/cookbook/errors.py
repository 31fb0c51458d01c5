"""One exception type for bad input: its message is one line saying what was wrong and what to do."""


class CookbookInputError(ValueError):
    """Raised before any training starts when a model, dataset or option cannot be used."""
