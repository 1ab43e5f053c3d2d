"""Errors whose message is meant for the user: one sentence, what is wrong and what to do."""


class WorkbenchError(Exception):
    """A problem the user can fix; its message is shown as is (CLI: exit code 2)."""


class InputError(WorkbenchError):
    """A user input (file, text, archive, CSV) was refused."""


class ModelError(WorkbenchError):
    """A model file could not be loaded or registered safely."""
