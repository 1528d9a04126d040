"""Tables of medians over boots or runs, printed the same way by every figure
tool: tooling/bench.py (text columns) and tooling/guest/viommu-migration.py
--table (markdown).

  median(values)        the median, None for no values
  half_spread(values)   half the spread max - min, in % of the median
  columns(specs, rows)  lines of fixed-width text columns
  markdown(header, rows)  lines of a markdown table
"""
import statistics


def median(values):
    values = list(values)
    return statistics.median(values) if values else None


def half_spread(values):
    """Half of max - min, in percent of the median (0 for a median of 0)."""
    m = median(values)
    return (max(values) - min(values)) / m * 100 / 2 if m else 0


def columns(specs, rows):
    """Lines of @rows (lists of cells) in columns: @specs holds per column
    (separator before it, format spec), e.g. ("", "58"), (" ", ">18")."""
    return ["".join(sep + format(cell, spec) for (sep, spec), cell in zip(specs, row))
            for row in rows]


def markdown(header, rows):
    """Lines of a markdown table: the header (an empty header cell stays
    '| |'), the rule, the rows."""
    head = "|" + "|".join(f" {c} " if c else " " for c in header) + "|"
    return [head, "|---" * len(header) + "|",
            *("| " + " | ".join(row) + " |" for row in rows)]


def show(lines):
    for line in lines:
        print(line)
