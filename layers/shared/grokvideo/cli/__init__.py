"""The ``grokvideo`` command: submit, watch, fetch and operate a deployed stack (``pip install .``).

Modules, one per concern:

- ``app``       the argument parser and the dispatch to commands (the console script's ``main``)
- ``exits``     exit codes and ``CliError``, the one error a command raises for a person to read
- ``deployment`` finding the stack (``--stack`` / ``--local``): its outputs, parameters, clients
- ``render``    tables, times, sizes and progress bars for people; JSON for scripts
- ``requests``  input events built from the command line and put on the bus
- ``watch``     following jobs to their end (``wait``, ``submit --wait``)
- ``fetch``     downloading a stored video and checking its sha256
- ``redrive``   moving dead letters back to where they can succeed
- ``tail``      following the stack's output events
- ``doctor``    checking a deployment's health: gathers the facts from AWS and the provider
- ``checks``    what the doctor concludes from them (pure: facts in, OK / WARN / FAIL out)

The Lambda layer leaves this subpackage out: no function imports it.
"""
