import sys

from .engine.training.lifeline import arm_from_env

arm_from_env()  # a served app ends with its server (`tui-nn serve` sets $TUI_NN_LIFELINE); nothing otherwise

from .cli.entry import main  # noqa: E402

sys.exit(main())
