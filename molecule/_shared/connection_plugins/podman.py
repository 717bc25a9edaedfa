# -*- coding: utf-8 -*-
# Test tooling, not part of the collection's plugins: the molecule scenarios' connection to their containers.
"""containers.podman's podman connection with pipelining: a module goes to the container on podman exec's stdin.

Without pipelining every task costs several ``podman exec`` calls (make a temporary directory, run the module,
remove the directory), each one a podman and runc start. upstream turns pipelining off because its ``exec`` does
not attach stdin; ``podman exec -i`` does. The molecule podman driver names the connection ``podman``, so this
file, on ANSIBLE_CONNECTION_PLUGINS, is found before ansible-core's redirect to containers.podman.podman.
"""
from __future__ import annotations

import shlex

from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.connection import ensure_connect
from ansible_collections.containers.podman.plugins.connection.podman import Connection as PodmanConnection

DOCUMENTATION = """
    name: podman
    short_description: containers.podman.podman with pipelining (podman exec -i)
    description:
        - Runs commands and copies files into an existing container with podman, like containers.podman.podman,
          and passes pipelined modules on the standard input of C(podman exec -i).
    author: aic.gateway developers
    options:
      remote_addr:
        description: The container's name or ID.
        default: inventory_hostname
        vars:
          - name: ansible_host
          - name: inventory_hostname
          - name: ansible_podman_host
      remote_user:
        description: User to run commands as inside the container.
        ini:
          - section: defaults
            key: remote_user
        env:
          - name: ANSIBLE_REMOTE_USER
        vars:
          - name: ansible_user
      podman_extra_args:
        description: Extra arguments to pass to the podman command line.
        default: ''
        ini:
          - section: defaults
            key: podman_extra_args
        vars:
          - name: ansible_podman_extra_args
        env:
          - name: ANSIBLE_PODMAN_EXTRA_ARGS
      podman_executable:
        description: Executable for the podman command.
        default: podman
        vars:
          - name: ansible_podman_executable
        env:
          - name: ANSIBLE_PODMAN_EXECUTABLE
"""


class Connection(PodmanConnection):
    """podman exec with stdin attached, so Ansible may pipeline modules."""

    transport = "podman"
    has_pipelining = True

    @ensure_connect
    def exec_command(self, cmd, in_data=None, sudoable=False):
        if in_data is None:
            return super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        # ConnectionBase.exec_command only records the call; upstream's exec without -i would drop in_data.
        args = ["exec", "-i"] + (["--user", self.user] if self.user else [])
        return self._podman(args, shlex.split(to_native(cmd, errors="surrogate_or_strict")), in_data)
