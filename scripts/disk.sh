# Sourced by the install scripts and scripts/test-all.sh: check free disk space before a step
# that needs it, so a full disk stops the step at once with a message that says how much it
# needs, instead of failing half-way through a 10-minute build ("no space left on device" from
# Go, the way a CI run on a nearly full machine once ended). The sizes are measured (each
# caller's comment says where); PDGEN_DISK_CHECK=0 skips the check.

# require_disk DIR GIB WHAT: exit 1 unless the filesystem holding DIR has GIB GiB free.
require_disk() {
  local dir=$1 need=$2 what=$3 avail_k mount
  [ "${PDGEN_DISK_CHECK:-1}" = 0 ] && return 0
  mkdir -p "$dir"
  read -r avail_k mount < <(df -Pk "$dir" | awk 'NR == 2 {print $4, $6}')
  if [ "$avail_k" -lt $(( need * 1024 * 1024 )) ]; then
    printf '%s needs about %s GiB free on %s (for %s), and %s GiB is free.\n' \
      "$what" "$need" "$mount" "$dir" "$(awk -v k="$avail_k" 'BEGIN {printf "%.1f", k / 1048576}')" >&2
    echo "Free some space and run it again (PDGEN_DISK_CHECK=0 skips this check)." >&2
    exit 1
  fi
}
