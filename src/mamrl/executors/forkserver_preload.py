"""Imported first by the forkserver of mamrl's process pools (`set_forkserver_preload`): makes the
forkserver die with the main process (`mamrl.executors.lifetime`). Importing it anywhere else
does nothing."""

from mamrl.executors.lifetime import die_with_parent, in_forkserver

if in_forkserver():
    die_with_parent()
