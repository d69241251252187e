"""LSN filters for ansible/restore.yml.

oms_lsn: a PostgreSQL LSN ('16/B374D848') as the number it stands for, so that two can be compared.
oms_backup_before_lsn: the newest backup (of `pgbackrest info --output=json`) that ends at or before an LSN: the one a
restore to that LSN must start from (pgBackRest 2.45 picks one by itself for a time target only).
"""


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


def oms_backup_before_lsn(backups, target):
    """The label of the newest backup whose stop LSN is at or before `target`; '' when there is none."""
    limit = oms_lsn(target)
    fitting = [b for b in backups if oms_lsn(b["lsn"]["stop"]) <= limit]
    if not fitting:
        return ""
    return max(fitting, key=lambda b: oms_lsn(b["lsn"]["stop"]))["label"]


class FilterModule:
    def filters(self):
        return {"oms_lsn": oms_lsn, "oms_backup_before_lsn": oms_backup_before_lsn}
