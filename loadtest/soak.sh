#!/usr/bin/env bash
# Soak: `claimwatch run` against a Tansu broker for a long simulated period, fed at a fixed rate,
# with the service's RSS, consumed records and state entries sampled over time. Answers "does the
# service's memory level off once its state retention turns over?", which a benchmark of a few
# seconds cannot. Not part of CI (it runs for minutes to hours); see BENCHMARKS.md "Soak".
#
#   bash loadtest/soak.sh [--members N] [--days D] [--rate R] [--interval S] [--partitions P]
#                         [--state-cache-mib M] [--count-heap] [--heaptrack]
#                         [--stall-at S --stall-for D]
#                         [--brokers HOST:PORT | --mock]
#
# --partitions sets the keyed topics' partition count (`topics.partitions` and `core.partitions`,
# default 4): Tansu answers fetches across many partitions slowly, and a service with fewer
# partitions per topic asks it for fewer. --state-cache-mib caps sled's page cache
# (`state_cache_mib`, default 256), which fills as the store grows on disk and counts in RSS.
# --count-heap runs the service with CLAIMWATCH_COUNT_HEAP=1 and samples, beside the RSS, the bytes
# live on its Rust heap (`claimwatch_heap_live_bytes`), what mimalloc holds committed for it
# (`claimwatch_heap_committed_bytes`) and glibc's C heap, librdkafka's (`claimwatch_c_heap_live_bytes`,
# `claimwatch_c_heap_held_bytes`); it costs the service some throughput.
# --heaptrack builds the service with the system allocator (`--features system-alloc`) and runs
# it under heaptrack (Debian's `heaptrack` package), then prints the call sites holding the most
# heap at its peak (`heaptrack_print`; the full trace is kept as heaptrack.zst in the working
# directory). Much slower: use it on short runs (e.g. --days 365). With --heaptrack the service is
# stopped with SIGKILL once it is idle, so that what heaptrack reports as "leaked" is the heap the
# idle service holds (state, caches, tables), printed by call site in heaptrack-idle.txt.
# --stall-at S --stall-for D freezes the service (SIGSTOP, then SIGCONT) for D seconds, S seconds
# after the producer started: the backlog it comes back to is what a service sees after an outage
# or a long pause (its consumer group session expires meanwhile, so it also rejoins the group).
# With --brokers it runs against that cluster (whose claimwatch topics must be empty: it creates
# the missing ones) instead of starting Tansu; with --mock against librdkafka's mock cluster in a
# process of its own (`loadtest/examples/mock_broker.rs`). Tansu's memory storage slows down as
# its partitions grow, and a soak on it ends up bound by the broker: see BENCHMARKS.md "Soak".
# Defaults: 20,000 members over 1,460 simulated days (about 1.2 million input records), produced
# at 4,000 records/s (about five minutes), sampled every 10 s. Everything it starts is stopped on
# exit; the working directory (logs, state, samples.tsv) is printed and kept.
set -euo pipefail
cd "$(dirname "$0")/.."

members=20000 days=1460 rate=4000 interval=10 brokers="" partitions=4 mock=0 cache="" heap=0 heaptrack=0
stall_at="" stall_for=60
while [ $# -gt 0 ]; do
  case "$1" in
    --members) members="$2"; shift 2 ;;
    --days) days="$2"; shift 2 ;;
    --rate) rate="$2"; shift 2 ;;
    --interval) interval="$2"; shift 2 ;;
    --brokers) brokers="$2"; shift 2 ;;
    --partitions) partitions="$2"; shift 2 ;;
    --mock) mock=1; shift ;;
    --state-cache-mib) cache="$2"; shift 2 ;;
    --count-heap) heap=1; shift ;;
    --heaptrack) heaptrack=1; shift ;;
    --stall-at) stall_at="$2"; shift 2 ;;
    --stall-for) stall_for="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on port $1" >&2
  return 1
}
# Sum of a metric's samples (every label set) in a /metrics scrape.
metric_sum() { awk -v m="$1" '$1 == m || index($1, m "{") == 1 { s += $NF } END { printf "%.0f", s }' "$2"; }

# Both `topics create` and `run` read these (the configuration check requires them equal; the
# group names the internal and changelog topics, README "Configuration").
export CLAIMWATCH_TOPICS__PARTITIONS="$partitions" CLAIMWATCH_CORE__PARTITIONS="$partitions"
export CLAIMWATCH_GROUP_ID=claimwatch-soak
[ -z "$cache" ] || export CLAIMWATCH_STATE_CACHE_MIB="$cache"
[ "$heap" = 0 ] || export CLAIMWATCH_COUNT_HEAP=1

features=()
[ "$heaptrack" = 0 ] || features=(--features system-alloc)
cargo build --release --quiet --bin claimwatch --example state_sizes "${features[@]}"
bin="$PWD/target/release/claimwatch"
work=$(mktemp -d -t claimwatch-soak.XXXXXX)
pids=()
# Newest first: the producer and the service stop before the broker they talk to.
cleanup() { [ -z "${service:-}" ] || kill -CONT "$service" 2>/dev/null || true; for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[i]}" 2>/dev/null || true; done; }
trap cleanup EXIT

if [ "$mock" = 1 ]; then
  cargo build --release --quiet --example mock_broker
  "$PWD/target/release/examples/mock_broker" >"$work/mock.out" 2>"$work/mock.log" &
  pids+=($!)
  # Creating the topics takes the mock ~0.5 s each.
  for _ in $(seq 1 600); do
    brokers=$(sed -n 's/^bootstrap=//p' "$work/mock.out")
    [ -n "$brokers" ] && break
    sleep 0.1
  done
  [ -n "$brokers" ] || { echo "soak: the mock broker did not start, see $work/mock.log" >&2; exit 1; }
elif [ -z "$brokers" ]; then
  tansu=$(bash tests/support/install-tansu.sh)
  port=$(free_port)
  "$tansu" broker --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$port" \
    --storage-engine memory://tansu/ >"$work/tansu.log" 2>&1 &
  pids+=($!)
  wait_port "$port"
  brokers="127.0.0.1:$port"
fi

# The mock broker created its topics itself (its admin API does not).
[ "$mock" = 1 ] || "$bin" topics create --brokers "$brokers" >"$work/topics.log" 2>&1
"$bin" generate --members "$members" --days "$days" --format avro --out "$work/input" >"$work/generate.log" 2>&1
total=$(grep -o 'generated [0-9]* claims, [0-9]* encounters, [0-9]* acknowledgments, [0-9]* remittances, [0-9]* enrolment' "$work/generate.log" |
  grep -o '[0-9]\+' | awk '{ s += $1 } END { print s }')
echo "soak: $members members over $days days, $total input records at $rate/s, $partitions partitions per keyed topic, sled cache ${cache:-256} MiB; work directory $work"

http_port=$(free_port)
preload=()
if [ "$heaptrack" = 1 ]; then
  # What the `heaptrack` script does, with the service itself as the process this script watches.
  mkfifo "$work/heaptrack.pipe"
  /usr/lib/heaptrack/libexec/heaptrack_interpret <"$work/heaptrack.pipe" | zstd -q -c >"$work/heaptrack.zst" &
  interpreter=$!
  preload=(env LD_PRELOAD=/usr/lib/heaptrack/libheaptrack_preload.so DUMP_HEAPTRACK_OUTPUT="$work/heaptrack.pipe")
fi
CLAIMWATCH_HTTP_LISTEN="127.0.0.1:$http_port" "${preload[@]}" "$bin" run --brokers "$brokers" \
  --state-dir "$work/state" >"$work/service.log" 2>&1 &
service=$!
pids+=("$service")
wait_port "$http_port"

started=$(date +%s)
"$bin" produce --input "$work/input" --brokers "$brokers" --rate "$rate" >"$work/produce.log" 2>&1 &
producer=$!
pids+=("$producer")
if [ -n "$stall_at" ]; then
  (sleep "$stall_at" && kill -STOP "$service" && echo "soak: service stopped (SIGSTOP) for $stall_for s" &&
    sleep "$stall_for" && kill -CONT "$service" && echo "soak: service continued (SIGCONT)") &
  pids+=($!)
fi

printf 'seconds\trss_mib\tconsumed\tstate_entries\theap_mib\tcommitted_mib\tc_live_mib\tc_held_mib\n' >"$work/samples.tsv"
printf '%8s %9s %12s %14s %9s %9s %9s %9s\n' seconds "RSS MiB" consumed "state entries" "heap MiB" "mi commit" "C live" "C held"
last_consumed=-1 still=0
while kill -0 "$service" 2>/dev/null; do
  sleep "$interval"
  curl -sf "http://127.0.0.1:$http_port/metrics" >"$work/metrics.txt" || continue
  rss_kib=$(awk '/^VmRSS:/ { print $2 }' "/proc/$service/status")
  consumed=$(metric_sum claimwatch_pipeline_consumed_records_total "$work/metrics.txt")
  entries=$(metric_sum claimwatch_state_entries "$work/metrics.txt")
  heap_mib=- commit_mib=- c_live_mib=- c_held_mib=-
  if [ "$heap" = 1 ]; then
    mib() { echo $(($(metric_sum "$1" "$work/metrics.txt") / 1048576)); }
    heap_mib=$(mib claimwatch_heap_live_bytes) commit_mib=$(mib claimwatch_heap_committed_bytes)
    c_live_mib=$(mib claimwatch_c_heap_live_bytes) c_held_mib=$(mib claimwatch_c_heap_held_bytes)
  fi
  t=$(($(date +%s) - started))
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" $((rss_kib / 1024)) "$consumed" "$entries" "$heap_mib" \
    "$commit_mib" "$c_live_mib" "$c_held_mib" >>"$work/samples.tsv"
  printf '%8s %9s %12s %14s %9s %9s %9s %9s\n' "$t" $((rss_kib / 1024)) "$consumed" "$entries" "$heap_mib" \
    "$commit_mib" "$c_live_mib" "$c_held_mib"
  # Done when the producer has finished and the service has consumed nothing new for 3 samples.
  if ! kill -0 "$producer" 2>/dev/null && [ "$consumed" = "$last_consumed" ]; then
    still=$((still + 1))
    [ "$still" -ge 3 ] && break
  else
    still=0
  fi
  last_consumed=$consumed
done
wait "$producer" || { echo "soak: the producer failed, see $work/produce.log" >&2; exit 1; }
# Everything produced must have been consumed: a lag left when consumption stopped is a stall.
lag=$(metric_sum claimwatch_kafka_consumer_lag_records "$work/metrics.txt")
echo "soak: consumer lag when consumption stopped: $lag records"

code=0
if [ "$heaptrack" = 1 ]; then
  # SIGKILL: a graceful exit would free the state before heaptrack could see it.
  kill -KILL "$service"
  wait "$service" || true
  echo "soak: service killed (SIGKILL) while idle: heaptrack's \"leaked\" is the idle heap"
else
  kill -TERM "$service"
  wait "$service" || code=$?
  echo "soak: service stopped with exit code $code (SIGTERM)"
fi
errors=$(grep -c ' ERROR ' "$work/service.log" || true)
echo "soak: $errors ERROR lines in the service log"
# The RSS over the run: at a quarter, half, three quarters and the end of the samples, and the peak.
awk -F'\t' 'NR > 1 { n++; r[n] = $2; if ($2 > peak) peak = $2 }
  END { if (n == 0) exit; printf "soak: RSS MiB at 1/4 %d, 1/2 %d, 3/4 %d, end %d; peak %d\n",
        r[int(n / 4) + 1], r[int(n / 2) + 1], r[int(3 * n / 4) + 1], r[n], peak }' "$work/samples.tsv"
# Which tables the state's bytes are in (a table whose mean entry grows with the simulated
# period has no retention): compare two soaks of different --days.
"$PWD/target/release/examples/state_sizes" "$work/state" | sed 's/^/soak: /' || true
if [ "$heaptrack" = 1 ]; then
  wait "$interpreter" || true
  # The heap at its peak by call site (text), and as flame-graph stacks (peak bytes per stack).
  heaptrack_print -f "$work/heaptrack.zst" -p -a 0 -T 0 -n 25 -s 3 >"$work/heaptrack.txt" 2>&1 || true
  heaptrack_print -f "$work/heaptrack.zst" -p 0 -a 0 -T 0 --flamegraph-cost-type peak \
    -F "$work/heaptrack-peak.stacks" >/dev/null 2>&1 || true
  # The heap still held when the idle service was killed, by call site.
  heaptrack_print -f "$work/heaptrack.zst" -p 0 -a 0 -T 0 -l -n 40 -s 3 >"$work/heaptrack-idle.txt" 2>&1 || true
  heaptrack_print -f "$work/heaptrack.zst" -p 0 -a 0 -T 0 -l --flamegraph-cost-type leaked \
    -F "$work/heaptrack-idle.stacks" >/dev/null 2>&1 || true
  grep -E '^(total runtime|calls to allocation|peak heap memory|peak RSS|total memory leaked)' "$work/heaptrack.txt" |
    sed 's/^/soak: heaptrack: /'
  echo "soak: heaptrack: call sites by peak heap in $work/heaptrack.txt, stacks in $work/heaptrack-peak.stacks"
  echo "soak: heaptrack: the idle heap by call site in $work/heaptrack-idle.txt, stacks in $work/heaptrack-idle.stacks"
fi
[ "$code" -eq 0 ] && [ "$errors" -eq 0 ] && [ "$lag" -eq 0 ]
