"""oms_lsn: a PostgreSQL LSN ('16/B374D848') as the number it stands for, so that two can be compared."""


def oms_lsn(value):
    """'X/Y' (hexadecimal halves) -> X * 2**32 + Y; a clear error for anything else."""
    text = str(value).strip()
    high, sep, low = text.partition("/")
    try:
        if not sep or not high or not low:
            raise ValueError
        return int(high, 16) * 2**32 + int(low, 16)
    except ValueError:
        raise ValueError("not a PostgreSQL LSN (like 0/27018058): %r" % (value,)) from None


class FilterModule:
    def filters(self):
        return {"oms_lsn": oms_lsn}
