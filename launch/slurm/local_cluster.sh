#!/usr/bin/env bash
# A one-machine Slurm cluster for tests and demos: controller and node daemon with auth/none,
# every path inside one state directory, stopped by their recorded process ids.
#
#   launch/slurm/local_cluster.sh start DIR [CPUS]   # prints `export SLURM_CONF=DIR/slurm.conf`
#   launch/slurm/local_cluster.sh stop DIR
set -euo pipefail

action=${1:?usage: local_cluster.sh start|stop DIR [CPUS]}
dir=${2:?usage: local_cluster.sh start|stop DIR [CPUS]}
cpus=${3:-8}

start() {
  for tool in slurmctld slurmd sbatch scontrol; do
    command -v "$tool" >/dev/null || { echo "local_cluster: $tool not found (apt-get install slurmctld slurmd slurm-client)" >&2; exit 1; }
  done
  mkdir -p "$dir"/{state,spool,log}
  dir=$(cd "$dir" && pwd)
  cat > "$dir/slurm.conf" <<CONF
ClusterName=trident-local
# Addresses are given explicitly: a minimal machine may have no /etc/hosts, and a lookup of
# "localhost" would then go to DNS and stall every daemon and client call.
SlurmctldHost=localhost(127.0.0.1)
AuthType=auth/none
# A requeued job waits cred_expire seconds before it may start again (default 120): short here
# so the preemption → requeue → resume test does not idle for two minutes.
AuthInfo=cred_expire=10
CredType=cred/none
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldPort=${TRIDENT_SLURMCTLD_PORT:-16817}
SlurmdPort=${TRIDENT_SLURMD_PORT:-16818}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=pmix
ReturnToService=2
SlurmdParameters=config_overrides
JobRequeue=1
KillWait=5
MailProg=/bin/true
MessageTimeout=10
SchedulerType=sched/backfill
NodeName=localhost NodeAddr=127.0.0.1 NodeHostname=localhost CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
  export SLURM_CONF="$dir/slurm.conf"
  slurmctld -D -i -f "$SLURM_CONF" > "$dir/log/slurmctld.out" 2>&1 &
  echo $! > "$dir/slurmctld.launcher.pid"
  slurmd -D -N localhost -f "$SLURM_CONF" > "$dir/log/slurmd.out" 2>&1 &
  echo $! > "$dir/slurmd.launcher.pid"
  for _ in $(seq 1 60); do
    if timeout 5 scontrol show node localhost 2>/dev/null | grep -qE "State=(IDLE|MIXED|ALLOCATED)"; then
      echo "export SLURM_CONF=$SLURM_CONF"
      return 0
    fi
    sleep 0.5
  done
  echo "local_cluster: node did not become idle; logs in $dir/log" >&2
  tail -20 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 || true
  stop
  exit 1
}

stop() {
  for name in slurmd slurmctld; do
    pid_file="$dir/$name.launcher.pid"
    [ -f "$pid_file" ] || continue
    pid=$(cat "$pid_file")
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pid_file"
  done
}

case "$action" in
  start) start ;;
  stop) stop ;;
  *) echo "local_cluster.sh: unknown action '$action' (start|stop)" >&2; exit 2 ;;
esac
