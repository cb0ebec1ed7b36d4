# bash completion for padmin(8): its commands and options, and the pfiles
# and processes of the running pcheck instances (asked of padmin itself:
# padmin __complete). make install puts it in
# $(PREFIX)/share/bash-completion/completions/padmin.

_padmin() {
	local IFS=$'\n' cur prev word i padmin=${COMP_WORDS[0]}
	local -a run=() args=()
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD - 1]}
	COMPREPLY=()
	case $prev in
	--run-dir)
		COMPREPLY=($(compgen -d -- "$cur"))
		return
		;;
	--timeout | --syslog | -n | --events | --buckets | --bucket-seconds)
		return
		;;
	esac
	# The words before the cursor: the command and its arguments, and the
	# run directory to ask.
	for ((i = 1; i < COMP_CWORD; i++)); do
		word=${COMP_WORDS[i]}
		case $word in
		--run-dir)
			run=(--run-dir "${COMP_WORDS[i + 1]}")
			i=$((i + 1))
			;;
		--run-dir=*) run=("$word") ;;
		--timeout | --syslog | -n | --events | --buckets | --bucket-seconds) i=$((i + 1)) ;;
		-*) ;;
		*) args+=("$word") ;;
		esac
	done
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W $'--run-dir\n--json\n--timeout\n--syslog\n--version\n--help\n--force\n-n\n--events\n--buckets\n--bucket-seconds' -- "$cur"))
		return
	fi
	local words=
	case ${#args[@]}:${args[0]} in
	0:*) words=$("$padmin" __complete commands 2>/dev/null) ;;
	1:help) words=$("$padmin" __complete commands 2>/dev/null) ;;
	1:list) ;;
	1:*) words=$("$padmin" __complete "${run[@]}" pfiles 2>/dev/null) ;;
	2:stop | 2:start | 2:restart | 2:reset)
		words=$("$padmin" __complete "${run[@]}" processes "${args[1]}" 2>/dev/null)
		;;
	esac
	# The words come from the pfiles and processes pcheck serves: filter
	# them by hand, as compgen -W would expand $(...) in them, and quote
	# them for the line.
	local w q
	while IFS= read -r w; do
		[ -n "$w" ] || continue
		printf -v q '%q' "$w"
		[[ $q == "$cur"* ]] && COMPREPLY+=("$q")
	done <<<"$words"
	return 0
}
complete -F _padmin padmin
