"""`hpcingest serve`: the old framework's REST job API on top of Slurm (or local mpiexec).

Layers: ``spec`` (a request's YAML/JSON, checked and mapped to `hpcingest start`),
``launchers`` (sbatch of jobs/slurm's scripts, or mpiexec), ``submission`` (what the service
did, in the job directory), ``slurm`` and ``state`` (a job's state, read back from the job
directory and Slurm), ``metrics`` (Prometheus), ``service`` (each API call), ``auth``, ``page``
and ``app`` (HTTP, with aiohttp: the ``serve`` extra), ``options`` and ``main`` (the command).
"""
