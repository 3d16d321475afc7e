"""The subcommands of `judgerl`, one module each.

Every module here is one command: it has `add_parser(subcommands)`, which adds its subparser (flags,
help) and sets `handler=run`, and `run(args) -> int`, which does the work and returns the exit code.
`judgerl.cli` lists the modules (that list is the order of `judgerl --help`) and turns what the
handlers raise into one-line errors and exit codes. A new command is a new module plus one line in
that list.

Commands import the library inside `run`, not at the top: `judgerl --help` stays fast and a
command does not pay for another's imports (torch, a provider's SDK).
"""
