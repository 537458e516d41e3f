#!/usr/bin/env bash
# local-slurm.sh: a real Slurm cluster of one or more nodes on this machine (Debian slurm-wlm) for integration
# tests and CI.
#
# Why: the plugin's Slurm path (sbatch, GRES GPUs, accounts, sacct states, cancel, time limits, jobs spanning
# nodes) is only worth testing against the real thing. This script installs Debian's packages, configures
# LLMB_SLURM_NODES nodes (default 2) that each pretend to have LLMB_SLURM_GPUS GPUs (default 8), and runs munged,
# MariaDB, slurmdbd, slurmctld and one `slurmd -N <node>` per node by hand (no systemd needed), as root.
# Debian's slurmd is built with multiple-slurmd support: several slurmd on one host form a real multi-node
# cluster, each node with its own Port= and TmpFS (PMIx creates a per-job folder there; libpmix-dev provides
# the PMIx library that `srun --mpi=pmix` loads).
#
# Usage (from the repository root, as root):
#   bash scripts/local-slurm.sh install   apt-get install the packages (update once, skip what is installed)
#   bash scripts/local-slurm.sh start     configure, start what is not running, wait for the node to be idle;
#                                         a no-op success when everything is already up
#   bash scripts/local-slurm.sh stop      cancel the cluster's jobs, stop the daemons whose pids this script
#                                         recorded (never by name); zombies count as stopped
#   bash scripts/local-slurm.sh status    one line per daemon; exit 0 all up, 3 all down, 1 partly up
#   bash scripts/local-slurm.sh env       shell lines to eval: SLURM_CONF and the cluster's names
#
# What you get: cluster `llmb`, nodes n1..nN (address 127.0.0.1, one slurmd each) with Gres=gpu:G backed by
# G symlinks to /dev/null per node (a job asking --gpus-per-node=4 sees CUDA_VISIBLE_DEVICES=0,1,2,3),
# partitions `debug` (default, the GPU partition) and `cpu` on all nodes, accounting through slurmdbd + MariaDB
# (sacct works), and an account `llmb` that root belongs to (associations are enforced, so --account=llmb is
# checked for real). Each node advertises max(real CPUs, LLMB_SLURM_CPUS or 8) CPUs
# (SlurmdParameters=config_overrides), so jobs shaped like an 8-GPU node (--ntasks-per-node=8 --exclusive)
# schedule on a 2-core CI machine.
#
# Settings (environment; a second cluster beside the default one needs its own state dir, ports and name):
#   LLMB_SLURM_STATE=/var/lib/llmb-local-slurm   LLMB_SLURM_CLUSTER=llmb   LLMB_SLURM_NODES=2   LLMB_SLURM_GPUS=8
#   LLMB_SLURM_CTLD_PORT=6817   LLMB_SLURM_DBD_PORT=6819   LLMB_SLURM_SLURMD_PORT=6821 (node i: +i-1)
#   LLMB_SLURM_DB_PORT=3307 (MariaDB)   LLMB_SLURM_CPUS=8 (CPUs each node advertises at least)
# The settings are recorded in the state dir at the first start; later commands on that state dir read them
# back unless set again, so `stop`/`status`/`env` need only LLMB_SLURM_STATE.
#
# Everything lives in the state dir, ${LLMB_SLURM_STATE:-/var/lib/llmb-local-slurm}:
#   etc/      slurm.conf, gres.conf, slurmdbd.conf (0600), db.secret (0600), cluster.env (what `env` prints)
#   dev/      nvidia0..3, the fake GPU device files (symlinks to /dev/null)
#   munge/    munge.key (0400, munge), seed and munged.log;  run/munge/ its socket and pid file
#   mysql/    the MariaDB data directory (port LLMB_SLURM_DB_PORT or 3307 on 127.0.0.1);  run/mysqld/ socket
#   slurmctld/ StateSaveLocation;  slurmd/<node>/ SlurmdSpoolDir;  tmp/<node>/ TmpFS;  run/ pid files;  log/ logs
#   settings  the settings above, as first started (sourced by later commands)
#   pids/     "pid starttime" of each daemon this script started: the only processes `stop` will signal
#   lock      flock(1) lock so two concurrent invocations do not race
# /etc/slurm/slurm.conf is made a symlink to etc/slurm.conf when it does not exist (or already is that link),
# so plain `sinfo`/`sbatch` work; an existing foreign slurm.conf is left alone: then `eval "$(... env)"`.
set -euo pipefail

STATE=${LLMB_SLURM_STATE:-/var/lib/llmb-local-slurm}
SETTINGS_NAMES=(LLMB_SLURM_CLUSTER LLMB_SLURM_NODES LLMB_SLURM_GPUS LLMB_SLURM_CTLD_PORT LLMB_SLURM_DBD_PORT
    LLMB_SLURM_SLURMD_PORT LLMB_SLURM_DB_PORT LLMB_SLURM_CPUS)
# What this state dir was first started with, unless set again now (the caller's environment wins).
if [ -f "$STATE/settings" ]; then
    while IFS='=' read -r key value; do
        case " ${SETTINGS_NAMES[*]} " in *" $key "*) [ -n "${!key:-}" ] || printf -v "$key" %s "$value" ;; esac
    done <"$STATE/settings"
fi
CLUSTER=${LLMB_SLURM_CLUSTER:-llmb}
NODES=${LLMB_SLURM_NODES:-2}
GPUS=${LLMB_SLURM_GPUS:-8}
CTLD_PORT=${LLMB_SLURM_CTLD_PORT:-6817}
DBD_PORT=${LLMB_SLURM_DBD_PORT:-6819}
SLURMD_PORT=${LLMB_SLURM_SLURMD_PORT:-6821}
DB_PORT=${LLMB_SLURM_DB_PORT:-3307}
MIN_CPUS=${LLMB_SLURM_CPUS:-8}
ACCOUNT=llmb
GPU_PARTITION=debug
CPU_PARTITION=cpu
PACKAGES=(slurmctld slurmd slurm-client munge slurmdbd mariadb-server mariadb-client libpmix-dev)
WAIT_S=${LLMB_SLURM_WAIT_S:-60}

for v in NODES GPUS CTLD_PORT DBD_PORT SLURMD_PORT DB_PORT MIN_CPUS; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "local-slurm: LLMB_SLURM_$v=${!v}: expected a positive integer" >&2; exit 2; }
done
[[ $CLUSTER =~ ^[a-z][a-z0-9_]*$ ]] ||
    { echo "local-slurm: LLMB_SLURM_CLUSTER=$CLUSTER: expected lower-case letters, digits, _" >&2; exit 2; }
NODE_NAMES=()
for ((i = 1; i <= NODES; i++)); do NODE_NAMES+=("n$i"); done
NODE_RANGE=$([ "$NODES" -eq 1 ] && echo n1 || echo "n[1-$NODES]")
DAEMONS=(munged mariadbd slurmdbd slurmctld)   # start order; stop goes in reverse
for n in "${NODE_NAMES[@]}"; do DAEMONS+=("slurmd-$n"); done

ETC=$STATE/etc RUN=$STATE/run PIDS=$STATE/pids LOG=$STATE/log
MUNGE_DIR=$STATE/munge MUNGE_RUN=$RUN/munge MUNGE_SOCKET=$RUN/munge/munge.socket
DATADIR=$STATE/mysql MYSQL_RUN=$RUN/mysqld MYSQL_SOCKET=$RUN/mysqld/mysqld.sock
export SLURM_CONF=$ETC/slurm.conf

die() { echo "local-slurm: $*" >&2; exit 1; }
say() { echo "local-slurm: $*"; }

need_root() { [ "$(id -u)" = 0 ] || die "must run as root (it installs packages and starts system daemons)"; }

# ---------------------------------------------------------------- process records (pid + start time)

# Print "STATE STARTTIME" of a pid from /proc (the comm field may hold spaces, so cut after the last ')').
proc_stat() {
    local rest
    rest=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    rest=${rest##*) }
    # shellcheck disable=SC2086
    set -- $rest
    echo "$1 ${20}"
}

# True when the daemon NAME that this script recorded is still that same process and not a zombie.
alive() {
    local rec pid start st
    rec=$(cat "$PIDS/$1" 2>/dev/null) || return 1
    read -r pid start <<<"$rec"
    st=$(proc_stat "$pid") || return 1
    [ "${st#* }" = "$start" ] || return 1   # pid reused by another process
    [ "${st%% *}" != Z ] && [ "${st%% *}" != X ]
}

# Start a daemon in the foreground of its own session, detached from our stdio and from every other fd we
# inherited (our lock on fd 9, a CI runner's pipes), and record its pid ($! is the daemon: exec, no fork).
launch() {
    local name=$1; shift
    (
        for fd in "/proc/$BASHPID/fd"/*; do
            fd=${fd##*/}
            [ "$fd" -le 2 ] || eval "exec $fd>&-"
        done 2>/dev/null
        exec setsid "$@"
    ) </dev/null >>"$LOG/$name.out" 2>&1 &
    local pid=$! st
    st=$(proc_stat "$pid") || { wait "$pid" || true; tail_log "$name"; die "$name exited at once"; }
    echo "$pid ${st#* }" >"$PIDS/$name.tmp" && mv -f "$PIDS/$name.tmp" "$PIDS/$name"
}

tail_log() {
    local f logs=("$LOG/$1.out" "$LOG/$1.log")
    [ "$1" != munged ] || logs+=("$MUNGE_DIR/munged.log")
    for f in "${logs[@]}"; do
        if [ -s "$f" ]; then echo "--- last lines of $f" >&2; tail -n 15 "$f" >&2; fi
    done
}

# Poll CMD until it succeeds; fail fast when the daemon NAME died, and with its log after WAIT_S seconds.
wait_for() {
    local name=$1 what=$2; shift 2
    local deadline=$((SECONDS + WAIT_S))
    until "$@" >/dev/null 2>&1; do
        alive "$name" || { tail_log "$name"; die "$name died while waiting for $what"; }
        [ $SECONDS -lt $deadline ] || { tail_log "$name"; die "timed out after ${WAIT_S}s waiting for $what"; }
        sleep 0.1
    done
}

# ---------------------------------------------------------------- install

cmd_install() {
    need_root
    local missing=() p
    for p in "${PACKAGES[@]}"; do
        [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || missing+=("$p")
    done
    if [ ${#missing[@]} -eq 0 ]; then say "packages already installed: ${PACKAGES[*]}"; return 0; fi
    say "installing: ${missing[*]}"
    # Keep the packages' init scripts from starting system-wide daemons we would not own (Docker's trick).
    local policy=/usr/sbin/policy-rc.d ours=""
    if [ ! -e $policy ]; then printf '#!/bin/sh\nexit 101\n' >$policy && chmod 755 $policy && ours=1; fi
    export DEBIAN_FRONTEND=noninteractive
    local rc=0
    apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}" || rc=$?
    [ -z "$ours" ] || rm -f $policy
    [ $rc -eq 0 ] || die "apt-get failed (exit $rc)"
}

# ---------------------------------------------------------------- configure

# Write FILE from stdin only when the content changed (temp file + rename); prints "changed" when it did.
put() {
    local file=$1 mode=$2 tmp
    tmp=$(mktemp "$file.XXXXXX")
    cat >"$tmp"
    chmod "$mode" "$tmp"
    if [ -f "$file" ] && cmp -s "$tmp" "$file"; then rm -f "$tmp"; return 0; fi
    mv -f "$tmp" "$file"
    echo changed
}

configure() {
    local p
    for p in slurmd slurmctld slurmdbd munged mariadbd; do
        command -v "$p" >/dev/null || die "$p not found: run 'bash scripts/local-slurm.sh install' first"
    done
    mkdir -p "$ETC" "$RUN" "$PIDS" "$LOG" "$STATE/dev" "$STATE/slurmctld" "$STATE/slurmd" "$STATE/tmp"
    local n
    for n in "${NODE_NAMES[@]}"; do mkdir -p "$STATE/dev/$n" "$STATE/slurmd/$n" "$STATE/tmp/$n"; done
    printf '%s\n' "LLMB_SLURM_CLUSTER=$CLUSTER" "LLMB_SLURM_NODES=$NODES" "LLMB_SLURM_GPUS=$GPUS" \
        "LLMB_SLURM_CTLD_PORT=$CTLD_PORT" "LLMB_SLURM_DBD_PORT=$DBD_PORT" "LLMB_SLURM_SLURMD_PORT=$SLURMD_PORT" \
        "LLMB_SLURM_DB_PORT=$DB_PORT" "LLMB_SLURM_CPUS=$MIN_CPUS" | put "$STATE/settings" 644 >/dev/null
    chmod 755 "$STATE" "$RUN"
    install -d -o munge -g munge -m 700 "$MUNGE_DIR"
    install -d -o munge -g munge -m 755 "$MUNGE_RUN"
    install -d -o mysql -g mysql -m 755 "$MYSQL_RUN"
    if [ ! -s "$MUNGE_DIR/munge.key" ]; then
        dd if=/dev/urandom of="$MUNGE_DIR/munge.key.tmp" bs=1024 count=1 status=none
        chown munge:munge "$MUNGE_DIR/munge.key.tmp" && chmod 400 "$MUNGE_DIR/munge.key.tmp"
        mv -f "$MUNGE_DIR/munge.key.tmp" "$MUNGE_DIR/munge.key"
    fi
    if [ ! -s "$ETC/db.secret" ]; then
        (umask 077 && od -An -tx1 -N16 /dev/urandom | tr -d ' \n' >"$ETC/db.secret.tmp")
        mv -f "$ETC/db.secret.tmp" "$ETC/db.secret"
    fi
    local i gres_lines=""
    for n in "${NODE_NAMES[@]}"; do
        local files=()
        for i in $(seq 0 $((GPUS - 1))); do
            ln -sfn /dev/null "$STATE/dev/$n/nvidia$i"
            files+=("$STATE/dev/$n/nvidia$i")
        done
        gres_lines+="NodeName=$n Name=gpu File=$(IFS=,; echo "${files[*]}")"$'\n'
    done

    # The node as slurmd sees it: "NodeName=vm CPUs=2 ... RealMemory=24105".
    local hw host cpus mem
    hw=$(slurmd -C | head -n 1)
    host=$(sed -n 's/.*NodeName=\([^ ]*\).*/\1/p' <<<"$hw")
    cpus=$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$hw")
    mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$hw")
    [ -n "$host" ] && [ -n "$cpus" ] && [ -n "$mem" ] || die "cannot parse 'slurmd -C' output: $hw"
    [ "$cpus" -ge "$MIN_CPUS" ] || cpus=$MIN_CPUS
    mem=$((mem * 95 / 100))               # a little less than reported, or the node drains on low memory
    local defmem=$((mem / cpus)); [ $defmem -le 1024 ] || defmem=1024
    local node_lines=""
    for i in "${!NODE_NAMES[@]}"; do   # every node is this host, told apart by its slurmd port
        node_lines+="NodeName=${NODE_NAMES[i]} NodeAddr=127.0.0.1 NodeHostname=$host Port=$((SLURMD_PORT + i))"
        node_lines+=" CPUs=$cpus Boards=1 SocketsPerBoard=1 CoresPerSocket=$cpus ThreadsPerCore=1"
        node_lines+=" RealMemory=$mem Gres=gpu:$GPUS State=UNKNOWN"$'\n'
    done

    local changed=""
    changed+=$(put "$ETC/slurm.conf" 644 <<EOF
# Generated by scripts/local-slurm.sh; edits are overwritten on the next start.
ClusterName=$CLUSTER
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
StateSaveLocation=$STATE/slurmctld
SlurmdSpoolDir=$STATE/slurmd/%n
# Per node: PMIx creates a per-job folder in TmpFS, and two slurmd sharing one fail with "File exists".
TmpFS=$STATE/tmp/%n
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd-%n.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups in this sandbox.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmdParameters=config_overrides
ReturnToService=2
# Without a default, each job takes the whole node's memory and jobs run one at a time.
DefMemPerCPU=$defmem
SchedulerType=sched/backfill
# Without batch_sched_delay=0 every batch job waits about 3 s.
SchedulerParameters=batch_sched_delay=0
GresTypes=gpu
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$DBD_PORT
# With slurmdbd this names the munge socket used to reach it (AuthInfo does not apply there).
AccountingStoragePass=$MUNGE_SOCKET
AccountingStorageTRES=gres/gpu
AccountingStorageEnforce=associations
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
JobCompType=jobcomp/none
MailProg=/bin/true
# Fast timers for snappy tests.
MessageTimeout=10
TCPTimeout=2
KillWait=5
MinJobAge=300
InactiveLimit=0
Waittime=0
OverTimeLimit=0
SlurmctldTimeout=30
SlurmdTimeout=30
UnkillableStepTimeout=30
${node_lines}PartitionName=$GPU_PARTITION Nodes=$NODE_RANGE Default=YES MaxTime=INFINITE State=UP
PartitionName=$CPU_PARTITION Nodes=$NODE_RANGE MaxTime=INFINITE State=UP
EOF
)
    changed+=$(put "$ETC/gres.conf" 644 <<EOF
# Fake GPUs: distinct character-device paths per node (symlinks to /dev/null).
AutoDetect=off
${gres_lines%$'\n'}
EOF
)
    changed+=$(put "$ETC/slurmdbd.conf" 600 <<EOF
# Generated by scripts/local-slurm.sh; holds the database password, so 0600 and owned by SlurmUser (root).
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
DbdHost=$host
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
SlurmUser=root
LogFile=$LOG/slurmdbd.log
PidFile=$RUN/slurmdbd.pid
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$(cat "$ETC/db.secret")
StorageLoc=slurm_acct_db
EOF
)
    put "$ETC/cluster.env" 644 >/dev/null <<EOF
export SLURM_CONF=$(printf %q "$ETC/slurm.conf")
export LLMB_SLURM_STATE=$(printf %q "$STATE")
export LLMB_SLURM_CLUSTER=$CLUSTER
export LLMB_SLURM_ACCOUNT=$ACCOUNT
export LLMB_SLURM_GPU_PARTITION=$GPU_PARTITION
export LLMB_SLURM_CPU_PARTITION=$CPU_PARTITION
export LLMB_SLURM_NODE=n1
export LLMB_SLURM_NODES=$NODES
export LLMB_SLURM_GPUS=$GPUS
EOF
    if [ -n "$changed" ] && { alive slurmctld || alive slurmdbd || any_slurmd_alive; }; then
        say "warning: configuration changed while daemons run; 'stop' then 'start' to apply it"
    fi
    link_default_conf
}

# Make plain `sinfo` find our slurm.conf, without ever replacing someone else's file.
link_default_conf() {
    local def=/etc/slurm/slurm.conf
    if [ -L $def ] && [ "$(readlink $def)" = "$ETC/slurm.conf" ]; then return 0; fi
    if [ -e $def ] || [ -L $def ]; then
        say "note: $def exists and is not ours; run: eval \"\$(bash scripts/local-slurm.sh env)\""
        return 0
    fi
    mkdir -p /etc/slurm && ln -s "$ETC/slurm.conf" $def
}

# ---------------------------------------------------------------- start

munge_ok() { munge -n -S "$MUNGE_SOCKET" | unmunge -S "$MUNGE_SOCKET"; }
db_ok() { mariadb-admin --no-defaults --socket="$MYSQL_SOCKET" -uroot status; }
dbd_ok() { sacctmgr -n -P show cluster format=cluster; }
ctld_ok() { scontrol ping | grep -q 'is UP'; }
node_state() { sinfo -h -n "$1" -o %t 2>/dev/null | head -n 1; }
node_ok() { case $(node_state "$1") in idle | mix | alloc | comp) return 0 ;; *) return 1 ;; esac; }
all_nodes_ok() { local n; for n in "${NODE_NAMES[@]}"; do node_ok "$n" || return 1; done; }
all_slurmd_alive() { local n; for n in "${NODE_NAMES[@]}"; do alive "slurmd-$n" || return 1; done; }
any_slurmd_alive() { local n; for n in "${NODE_NAMES[@]}"; do alive "slurmd-$n" && return 0; done; return 1; }
states() { local n out=""; for n in "${NODE_NAMES[@]}"; do out+=" $n=$(node_state "$n")"; done; echo "${out# }"; }

start_munged() {
    launch munged setpriv --reuid=munge --regid=munge --init-groups munged -F \
        --socket="$MUNGE_SOCKET" --key-file="$MUNGE_DIR/munge.key" --pid-file="$MUNGE_RUN/munged.pid" \
        --seed-file="$MUNGE_DIR/munged.seed" --log-file="$MUNGE_DIR/munged.log"
    wait_for munged "munged to answer" munge_ok
}

start_mariadbd() {
    if [ ! -d "$DATADIR/mysql" ]; then   # initialise into a temp dir, rename when complete
        rm -rf "$DATADIR.init"
        install -d -o mysql -g mysql -m 750 "$DATADIR.init"
        mariadb-install-db --no-defaults --user=mysql --datadir="$DATADIR.init" --skip-test-db \
            --auth-root-authentication-method=socket --skip-name-resolve >"$LOG/mariadb-install-db.log" 2>&1 ||
            { tail -n 15 "$LOG/mariadb-install-db.log" >&2; die "mariadb-install-db failed"; }
        mv "$DATADIR.init" "$DATADIR"
    fi
    launch mariadbd mariadbd --no-defaults --user=mysql --datadir="$DATADIR" --socket="$MYSQL_SOCKET" \
        --pid-file="$MYSQL_RUN/mariadbd.pid" --port="$DB_PORT" --bind-address=127.0.0.1 --skip-name-resolve \
        --log-error="$LOG/mariadbd.log" --innodb-buffer-pool-size=256M --innodb-log-file-size=64M --innodb-lock-wait-timeout=900
    wait_for mariadbd "MariaDB to answer" db_ok
}

grant_db() {
    local pw; pw=$(cat "$ETC/db.secret")
    mariadb --no-defaults --socket="$MYSQL_SOCKET" -uroot <<EOF || die "granting the slurm database user failed"
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$pw';
ALTER USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$pw';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
EOF
}

# Cluster, account and root's association, added only when missing (sacctmgr -i add is not idempotent).
ensure_accounts() {
    # root's association implies the cluster and the account: one query on every start after the first.
    [ -z "$(sacctmgr -n -P show assoc where cluster="$CLUSTER" account="$ACCOUNT" user=root format=user)" ] ||
        return 0
    [ -n "$(sacctmgr -n -P show cluster "$CLUSTER" format=cluster)" ] ||
        sacctmgr -i -Q add cluster "$CLUSTER" >/dev/null
    [ -n "$(sacctmgr -n -P show account "$ACCOUNT" format=account)" ] ||
        sacctmgr -i -Q add account "$ACCOUNT" cluster="$CLUSTER" description="llmb tests" organization=llmb >/dev/null
    [ -n "$(sacctmgr -n -P show assoc where cluster="$CLUSTER" account="$ACCOUNT" user=root format=user)" ] ||
        sacctmgr -i -Q add user root account="$ACCOUNT" cluster="$CLUSTER" >/dev/null
}

cmd_start() {
    need_root
    local t0=$SECONDS started=""
    configure
    if alive munged && alive mariadbd && alive slurmdbd && alive slurmctld && all_slurmd_alive && all_nodes_ok; then
        say "already running (cluster $CLUSTER: $(states))"
        return 0
    fi
    alive munged || { start_munged; started+=" munged"; }
    alive mariadbd || { start_mariadbd; started+=" mariadbd"; }
    grant_db
    if ! alive slurmdbd; then
        launch slurmdbd slurmdbd -D
        started+=" slurmdbd"
    fi
    wait_for slurmdbd "slurmdbd to answer" dbd_ok
    ensure_accounts
    if ! alive slurmctld; then
        launch slurmctld slurmctld -D
        started+=" slurmctld"
    fi
    wait_for slurmctld "slurmctld to answer" ctld_ok
    local n
    for n in "${NODE_NAMES[@]}"; do
        if ! alive "slurmd-$n"; then
            launch "slurmd-$n" slurmd -D -N "$n"
            started+=" slurmd-$n"
        fi
    done
    for n in "${NODE_NAMES[@]}"; do
        case $(node_state "$n") in   # a drain left over from an earlier run (e.g. a step that would not die)
        drain | drng | drained | draining)
            say "resuming drained node $n: $(sinfo -h -R -n "$n" -o %E)"
            scontrol update nodename="$n" state=resume >/dev/null 2>&1 || true
            ;;
        esac
        wait_for "slurmd-$n" "node $n to be idle" node_ok "$n"
    done
    say "started${started:- nothing new}; cluster $CLUSTER: $(states) after $((SECONDS - t0))s"
}

# ---------------------------------------------------------------- stop / status / env

cmd_stop() {
    need_root
    local name rec pid start deadline
    if alive slurmctld; then   # jobs would outlive slurmd in their slurmstepd; cancel them through Slurm
        scancel --partition="$GPU_PARTITION" >/dev/null 2>&1 || true
        scancel --partition="$CPU_PARTITION" >/dev/null 2>&1 || true
        deadline=$((SECONDS + 15))
        while [ -n "$(squeue -h -t R,CG -o %i 2>/dev/null)" ] && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
    fi
    local order=() f
    for f in "$PIDS"/*; do   # daemons recorded under names this configuration no longer has (an old slurmd)
        [ -f "$f" ] && [[ $f != *.tmp ]] || continue
        case " ${DAEMONS[*]} " in *" ${f##*/} "*) ;; *) order+=("${f##*/}") ;; esac
    done
    for ((i = ${#DAEMONS[@]} - 1; i >= 0; i--)); do order+=("${DAEMONS[i]}"); done
    for name in "${order[@]}"; do
        [ -f "$PIDS/$name" ] || continue
        if alive "$name"; then
            read -r pid start <"$PIDS/$name"
            kill -TERM "$pid" 2>/dev/null || true
            deadline=$((SECONDS + 20))
            while alive "$name" && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
            if alive "$name"; then
                say "$name (pid $pid) ignored SIGTERM for 20s; sending SIGKILL"
                kill -KILL "$pid" 2>/dev/null || true
                deadline=$((SECONDS + 10))
                while alive "$name"; do
                    [ $SECONDS -lt $deadline ] || die "$name (pid $pid) survives SIGKILL; giving up"
                    sleep 0.1
                done
            fi
            say "stopped $name (pid $pid)"
        fi
        rm -f "$PIDS/$name"
    done
}

cmd_status() {
    local name up=0 rec
    for name in "${DAEMONS[@]}"; do
        if alive "$name"; then
            rec=$(cat "$PIDS/$name"); echo "$name: running (pid ${rec%% *})"; up=$((up + 1))
        else
            echo "$name: stopped"
        fi
    done
    if [ $up -eq ${#DAEMONS[@]} ]; then
        sinfo -N -o '%N %P %t %G' 2>&1 || true
        return 0
    fi
    [ $up -eq 0 ] && return 3
    return 1
}

cmd_env() {
    [ -f "$ETC/cluster.env" ] || die "not configured yet in $STATE: run 'bash scripts/local-slurm.sh start'"
    cat "$ETC/cluster.env"
}

usage() {
    echo "usage: bash scripts/local-slurm.sh install|start|stop|status|env" >&2
}

main() {
    [ $# -eq 1 ] || { usage; exit 2; }
    case $1 in
    install | start | stop | status | env) ;;
    -h | --help) usage; sed -n '2,/^set -euo/p' "$0" | sed '$d' >&2; exit 0 ;;
    *) echo "local-slurm: unknown command '$1' (accepted: install, start, stop, status, env)" >&2; exit 2 ;;
    esac
    case $1 in
    start | stop)
        need_root
        mkdir -p "$STATE"
        exec 9>"$STATE/lock"
        flock -w 120 9 || die "another local-slurm.sh holds $STATE/lock"
        ;;
    esac
    "cmd_$1"
}

main "$@"
