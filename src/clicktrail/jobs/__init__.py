"""The background jobs: what runs beside the server, on a schedule.

`process` is the jobs process `clicktrail serve` starts beside its server(s): it builds the
container, runs the jobs `Container.background_jobs` wires (the click pipeline of
services/clicks.py, the sending worker) on the scheduler of services/scheduler.py and a final
pass after the servers drained. The scheduler is not here: a server process that runs its jobs
itself (`uvicorn --factory clicktrail.bootstrap:create_app`, tests) uses it too, and the
composition root imports nothing from this entry point.
"""
