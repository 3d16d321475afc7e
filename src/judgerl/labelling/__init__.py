"""Preference data from any judge (`judgerl label`): pairs of completions of one prompt, chosen and
rejected, with the judge's margin, confidence and critique, for training a reward model.

    records.py      the input rows, the output pair record, the counts
    pairs.py        judgments -> pairs, and why each candidate pair was dropped
    run.py          a judge over rows, batch by batch, into a file written whole or not at all
    from_config.py  the judge, gate and policy a config builds (the app layer's entry point)

Never a pair the judge does not stand behind: an unscored completion pairs with nothing, a
judgment the confidence gate rejects makes no pair, and every dropped pair is counted by reason.
"""

from judgerl.labelling.records import METHODS, LabelCounts, LabelInputError, LabelRow, PreferencePair, read_label_rows
from judgerl.labelling.run import Labeller, label_to_file, summary_path

__all__ = ["METHODS", "LabelCounts", "LabelInputError", "LabelRow", "Labeller", "PreferencePair", "label_to_file",
           "read_label_rows", "summary_path"]
