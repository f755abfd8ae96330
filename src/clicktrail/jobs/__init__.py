"""The background jobs: what runs beside the server, on a schedule.

`scheduler.Periodic` runs jobs at their intervals on one thread (in the jobs process, or in a
server process that runs its jobs itself: `uvicorn --factory clicktrail.bootstrap:create_app`,
tests). `process` is the jobs process `clicktrail serve` starts beside its server(s): it builds
the container, runs the jobs `Container.background_jobs` wires (the click pipeline of
services/clicks.py, the sending worker) and a final pass after the servers drained.
"""
