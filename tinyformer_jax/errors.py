"""One exception type for bad input the user can fix (data, config, flags): one readable line."""


class TinyFormerError(Exception):
    """Raised with a message that names the file, flag or config field at fault."""
