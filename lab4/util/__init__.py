"""Plumbing every part uses: errors, where files live and how they are written, the device, command-line
flags, notebooks run under deadlines."""
