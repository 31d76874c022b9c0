"""Option value types whose errors are one line that names the option and what it expects.

click's own range types answer with a usage block and let nan and inf through a FloatRange;
these check the value completely and raise a UsageError whose message is the whole line
(`-m 0: expected ...`), which main() prints as `v3: error: ...` with status 1.
"""
import math

import click


class OptionValueError(click.UsageError):
    """A bad option value; the message is the whole line, option and value first."""


class Number(click.ParamType):
    """An int or a float in [low, high] (low excluded with low_open); `expected` says what."""

    name = "number"

    def __init__(self, kind, low, high, expected, low_open=False, metavar=None):
        self.kind, self.low, self.high, self.low_open = kind, low, high, low_open
        self.expected = expected
        self.metavar = metavar

    def get_metavar(self, param, ctx=None):
        return self.metavar

    def convert(self, value, param, ctx):
        option = param.opts[0] if param is not None and param.opts else "value"
        shown = value
        try:
            if isinstance(value, bool):
                raise ValueError
            number = self.kind(value) if not isinstance(value, str) else self.kind(value.strip())
        except (TypeError, ValueError, OverflowError):
            number = None
        if number is None or (isinstance(number, float) and not math.isfinite(number)) or \
                number < self.low or (self.low_open and number == self.low) or number > self.high:
            raise OptionValueError(f"{option} {shown}: expected {self.expected}", ctx)
        return number


class MemorySize(click.ParamType):
    """-m as QEMU takes it: megabytes (1024), a size with a suffix (512M, 1G, 1.5G), or
    size=...; a whole number of megabytes from 1 to `high`."""

    name = "memory"

    def __init__(self, high):
        self.high = high

    def get_metavar(self, param, ctx=None):
        return "MB"

    def convert(self, value, param, ctx):
        if isinstance(value, int) and not isinstance(value, bool):
            mb = value
        else:
            text = str(value).strip()
            text = text[5:] if text.startswith("size=") else text
            scale = {"M": 1, "G": 1024}.get(text[-1:].upper(), None)
            number = text[:-1] if scale else text
            try:
                amount = float(number) * (scale or 1)
            except ValueError:
                amount = math.nan
            mb = int(amount) if math.isfinite(amount) and amount == int(amount) else None
        if mb is None or not 1 <= mb <= self.high:
            raise OptionValueError(f"-m {value}: expected the machine's memory in MB, a whole "
                                   f"number from 1 to {self.high} (or a size: 512M, 1G)", ctx)
        return mb
