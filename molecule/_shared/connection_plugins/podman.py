# -*- coding: utf-8 -*-
# Test tooling, not part of the collection's plugins: the molecule scenarios' and the lab's connection to their
# containers.
"""containers.podman's podman connection, made cheap per task: pipelining, and nsenter instead of podman exec.

Upstream's connection costs every task a ``podman mount`` and, for each command, a ``podman exec``: each one a
podman, conmon and runc start (about 150 ms here, most of a small task's time, and CPU that two scenarios side by
side on two cores share). This connection:

* pipelines modules (they go to the container's python on stdin), so a task runs one command, not several;
* when the controller runs as root (rootful podman, as on these machines) runs that command with ``nsenter``
  into the container's init's namespaces, with the container's environment, resource limits and root directory
  (2-3 ms). The init's PID comes from ``podman inspect`` once per container and controller run, kept in a small
  cache that is checked against /proc on every use (a restarted or re-created container is looked up again);
* copies files through the same nsenter (``cat``), so paths resolve inside the container's mount namespace.

What differs from ``podman exec``: the command keeps the controller's capabilities and cgroup, and no seccomp
profile applies. Services started through the container's systemd are unaffected (systemd places them); tests
(testinfra) still use ``podman exec``. Set AIC_PODMAN_CONNECTION=exec, or a remote user, to use podman exec for
everything.
"""
from __future__ import annotations

import json
import os
import resource
import shlex
import subprocess
import tempfile

from ansible.errors import AnsibleError
from ansible.module_utils.common.text.converters import to_bytes, to_native
from ansible.plugins.connection import ensure_connect
from ansible.utils.display import Display
from ansible_collections.containers.podman.plugins.connection.podman import Connection as PodmanConnection

DOCUMENTATION = """
    name: podman
    short_description: containers.podman.podman with pipelining, through nsenter when run as root
    description:
        - Runs commands and copies files into an existing container like containers.podman.podman. Pipelined
          modules go on the command's standard input. As root, commands run with nsenter in the container's
          namespaces instead of C(podman exec).
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
        description: User to run commands as inside the container (then C(podman exec) is used).
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

display = Display()

# What podman exec gives a command when the image sets no environment of its own.
DEFAULT_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "TERM": "xterm",
    "container": "podman",
}
CACHE_DIR = os.path.join(tempfile.gettempdir(), "aic-podman-connection")
NSENTER = next((p for p in ("/usr/bin/nsenter", "/bin/nsenter") if os.path.exists(p)), None)


def _read(path):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return None


def _alive(entry):
    """True when the cached PID is still the init of that container (its cgroup names the container's ID)."""
    cgroup = _read("/proc/%d/cgroup" % entry["pid"])
    return bool(cgroup) and to_bytes(entry["id"]) in cgroup


def nsenter_target(name, inspect):
    """(PID, environment, limits) of container `name`'s init, or None when nsenter cannot be used.

    `inspect` returns podman inspect's "<pid> <id>" for the container; it is called only when the cache is
    missing or stale. molecule/conftest.py uses this too, so testinfra's commands take the same way in.
    """
    if os.environ.get("AIC_PODMAN_CONNECTION", "nsenter") != "nsenter" or not NSENTER or os.geteuid() != 0:
        return None
    cache = os.path.join(CACHE_DIR, name.replace("/", "_") + ".json")
    entry = None
    raw = _read(cache)
    if raw:
        try:
            entry = json.loads(raw)
        except ValueError:
            entry = None
    if not entry or not _alive(entry):
        pid, cid = inspect().split()
        entry = {"pid": int(pid), "id": cid}
        if entry["pid"] <= 0 or not _alive(entry):
            return None
        os.makedirs(CACHE_DIR, mode=0o700, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=CACHE_DIR, delete=False) as handle:
            json.dump(entry, handle)
        os.replace(handle.name, cache)
    pid = entry["pid"]
    environ = dict(DEFAULT_ENV)
    for item in (_read("/proc/%d/environ" % pid) or b"").split(b"\0"):
        key, sep, value = to_native(item, errors="surrogate_or_strict").partition("=")
        if sep and key in ("PATH", "HOME", "TERM", "container", "LANG", "LC_ALL"):
            environ[key] = value
    limits = {}
    for limit in (resource.RLIMIT_NOFILE, resource.RLIMIT_NPROC):
        try:
            limits[limit] = resource.prlimit(pid, limit)
        except (OSError, ValueError):
            pass
    return pid, environ, limits


def nsenter_popen(target, argv, **kwargs):
    """Start argv inside the target container: its namespaces, environment and resource limits."""
    pid, environ, limits = target

    def set_limits():
        for limit, value in limits.items():
            resource.setrlimit(limit, value)

    return subprocess.Popen(  # pylint: disable=subprocess-popen-preexec-fn
        [to_bytes(arg, errors="surrogate_or_strict") for arg in [NSENTER, "--target", str(pid), "--all", "--"] + argv],
        env=environ, cwd="/", preexec_fn=set_limits, **kwargs)


class Connection(PodmanConnection):
    """podman exec with stdin attached (pipelining), or nsenter into the container's namespaces as root."""

    transport = "podman"
    has_pipelining = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._target = None  # (pid, environment, limits) when nsenter is used

    def _connect(self):
        # Upstream mounts the container's filesystem here (a podman call per task); nsenter needs nothing.
        if self._connected:
            return self
        self._connected = True
        if not self.user:
            self._target = nsenter_target(to_native(self._container_id), self._inspect)
        if self._target is None:
            return super()._connect()
        return self

    def _inspect(self):
        rc, out, err = self._podman("inspect", ["--format", "{{.State.Pid}} {{.Id}}"])
        if rc != 0:
            raise AnsibleError("podman inspect %s failed: %s" % (self._container_id, to_native(err).strip()))
        return to_native(out)

    def _nsenter(self, argv, in_data=None):
        display.vvv("NSENTER %s %s" % (self._target[0], argv), host=self._container_id)
        proc = nsenter_popen(self._target, argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        stdout, stderr = proc.communicate(input=in_data)
        return proc.returncode, stdout, stderr

    @ensure_connect
    def exec_command(self, cmd, in_data=None, sudoable=False):
        argv = shlex.split(to_native(cmd, errors="surrogate_or_strict"))
        if self._target is not None:
            super(PodmanConnection, self).exec_command(cmd, in_data=in_data, sudoable=sudoable)
            return self._nsenter(argv, in_data)
        if in_data is None:
            return super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        # ConnectionBase.exec_command only records the call; upstream's exec without -i would drop in_data.
        args = ["exec", "-i"] + (["--user", self.user] if self.user else [])
        return self._podman(args, argv, in_data)

    @ensure_connect
    def put_file(self, in_path, out_path):
        if self._target is None:
            return super().put_file(in_path, out_path)
        super(PodmanConnection, self).put_file(in_path, out_path)
        display.vvv("PUT %s TO %s" % (in_path, out_path), host=self._container_id)
        with open(to_bytes(in_path, errors="surrogate_or_strict"), "rb") as handle:
            data = handle.read()
        rc, _out, err = self._nsenter(["/bin/sh", "-c", 'cat > "$1"', "put_file", to_native(out_path)], data)
        if rc != 0:
            raise AnsibleError("Failed to copy %s to %s in container %s: %s"
                               % (in_path, out_path, self._container_id, to_native(err).strip()))
        return None

    @ensure_connect
    def fetch_file(self, in_path, out_path):
        if self._target is None:
            return super().fetch_file(in_path, out_path)
        super(PodmanConnection, self).fetch_file(in_path, out_path)
        display.vvv("FETCH %s TO %s" % (in_path, out_path), host=self._container_id)
        rc, out, err = self._nsenter(["/bin/cat", "--", to_native(in_path)])
        if rc != 0:
            raise AnsibleError("Failed to fetch %s from container %s: %s"
                               % (in_path, self._container_id, to_native(err).strip()))
        with open(to_bytes(out_path, errors="surrogate_or_strict"), "wb") as handle:
            handle.write(out)
        return None

    def close(self):
        if self._target is None:
            return super().close()
        self._connected = False
        return None
