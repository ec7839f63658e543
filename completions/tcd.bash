# bash completion for tcd(8)                                 -*- shell-script -*-
#
# Install as /usr/share/bash-completion/completions/tcd, or source it.
# Live values come from the system and from tcd itself, the way bpftool's
# completion asks bpftool: interfaces (ip -o link show, or /sys/class/net),
# network namespaces (ip netns list), handlers (tcd -j handler list) and
# wired keys (tcd -j map list), honouring a -d/--pin-dir given on the line
# (else tcd's own default: $TCD_PIN_DIR, else /sys/fs/bpf/tcd).
#
# The two tables below are the command tree; tests/sync/sync_test.cpp reads
# them and checks them against the CLI11 definitions, so keep their shape:
# one  'PATH') echo 'WORDS' ;;  arm per command path, '' being the top level,
# and options that take a value written with a trailing '='.

# The subcommands of a command path.
_tcd_subcommands()
{
    case $1 in
        '') echo 'attach detach map stats load unload status handler trace object apply monitor' ;;
        'map') echo 'set del list' ;;
        'handler') echo 'load list unload' ;;
    esac
}

# The options of a command path; the top level's are the global options,
# which are accepted after the command too.
_tcd_options()
{
    case $1 in
        '') echo '-d= --pin-dir= -j --json -p --pretty -q --quiet -v --verbose -V --version -h --help' ;;
        'attach') echo '--mode= --netns= --priority= --alone --direction= --order= --force' ;;
        'detach') echo '--netns= --direction= --all' ;;
        'stats') echo '--watch --interval= --count= --all --reset --format= --listen=' ;;
        'load') echo '--key= --hook= --miss-action= --force' ;;
        'handler load') echo '--prog=' ;;
        'handler unload') echo '--force' ;;
        'unload') echo '--force' ;;
        'status') echo '--scan' ;;
        'map list') echo '--scan' ;;
        'trace') echo '--pcap= --hex= --key= --hook= --repeat=' ;;
        'object') echo '-o= --output= --key= --hook=' ;;
        'apply') echo '-f= --file= --dry-run' ;;
        'monitor') echo '--key= --misses --iface= --netns= --level= --count= --duration= --sample= --rate= --snaplen= -w= --write=' ;;
    esac
}

# Protocol names for KEY: /etc/protocols (names and aliases) and the table
# built into tcd, with the extra spellings tcd accepts.
_tcd_protocols()
{
    {
        if [[ -r /etc/protocols ]]; then
            command awk '{ sub(/#.*/, ""); if (NF < 2 || $2 !~ /^[0-9]+$/ || $2 > 255) next;
                           for (i = 1; i <= NF; i++) if (i != 2) print tolower($i) }' /etc/protocols
        fi
        printf '%s\n' hopopt icmp igmp ggp ipencap st tcp egp igp pup udp hmp xns-idp rdp \
            iso-tp4 dccp xtp ddp idpr-cmtp ipv6 ipv6-route ipv6-frag idrp rsvp gre esp ah \
            skip ipv6-icmp ipv6-nonxt ipv6-opts rspf vmtp eigrp ospf ax.25 ipip etherip encap \
            pim ipcomp vrrp l2tp isis sctp fc mobility-header udplite mpls-in-ip manet hip \
            shim6 wesp rohc ethernet \
            icmpv6 icmp6 ipv6icmp ip ipsec-esp ipsec-ah ospfigp ip-encap ipv4
    } 2>/dev/null | command sort -u
}

# Service names for KEY on a port instance: /etc/services (tcp and udp
# names and aliases) and the table built into tcd, with its extra spellings.
_tcd_services()
{
    {
        if [[ -r /etc/services ]]; then
            command awk '{ sub(/#.*/, ""); if (NF < 2 || $2 !~ /^[0-9]+\/(tcp|udp)$/) next;
                           for (i = 1; i <= NF; i++) if (i != 2) print tolower($i) }' /etc/services
        fi
        printf '%s\n' ftp-data ftp ssh telnet smtp domain bootps bootpc tftp http pop3 ntp \
            imap2 snmp bgp ldap https submissions syslog submission ldaps domain-s imaps pop3s \
            radius nfs mysql stun vxlan sip postgresql redis sun-sr-https http-alt jetdirect \
            dns www imap postgres webcache http-proxy
    } 2>/dev/null | command sort -u
}

# Names for KEY: services on a port instance, else protocols.
_tcd_key_names()
{
    if _tcd_json status | command grep -q '"key":"port"'; then
        _tcd_services
    else
        _tcd_protocols
    fi
}

# Interfaces, in network namespace $1 when given (a name under /run/netns or
# a path).
_tcd_interfaces()
{
    local ns=$1 out=
    if [[ -z $ns ]]; then
        out=$(command ip -o link show 2>/dev/null) || out=
        if [[ -z $out ]]; then
            command ls /sys/class/net 2>/dev/null
            return
        fi
    elif [[ $ns != */* ]]; then
        out=$(command ip -n "$ns" -o link show 2>/dev/null)
    else
        out=$(command nsenter --net="$ns" ip -o link show 2>/dev/null)
    fi
    # "2: eth0: <...>" or "5: veth0@if4: <...>"
    printf '%s\n' "$out" | command awk -F': ' 'NF > 1 { sub(/@.*/, "", $2); print $2 }'
}

# Network namespace names (ip netns list prints "NAME (id: N)").
_tcd_netns_names()
{
    { command ip netns list 2>/dev/null || command ls /run/netns 2>/dev/null; } |
        command awk '{ print $1 }'
}

# Runs tcd -j ARGS against the pin dir named on the line, if any.
_tcd_json()
{
    local -a pin=()
    [[ -n $_tcd_pin_dir ]] && pin=(-d "$_tcd_pin_dir")
    "$_tcd_bin" "${pin[@]}" -j "$@" 2>/dev/null
}

# Handler names pinned in the pin dir; the built-in ones when tcd cannot
# say (not loaded yet, not root).
_tcd_handlers()
{
    local json
    if json=$(_tcd_json handler list) && [[ $json == \[* ]]; then
        printf '%s\n' "$json" | command grep -o '"name":"[^"]*"' | command cut -d'"' -f4
    else
        echo 'tcp_handler udp_handler pass drop'
    fi
}

# Wired keys: the protocol name where there is one, else the number. Fails
# when tcd does (not loaded, not root).
_tcd_wired_keys()
{
    local json
    json=$(_tcd_json map list) && [[ $json == \[* ]] || return 1
    printf '%s\n' "$json" | command tr '{' '\n' |
        command sed -n -e 's/.*"key":\([0-9]*\),"proto":"\([^"]*\)".*/\2/p' \
                       -e 's/.*"key":\([0-9]*\),"proto":null.*/\1/p'
}

# Interfaces the dispatcher is attached to.
_tcd_attached()
{
    _tcd_json status | command grep -o '"ifname":"[^"]*"' | command cut -d'"' -f4
}

# Whether option $2 of command path $1 (or a global option) takes a value.
_tcd_takes_value()
{
    local o
    for o in $(_tcd_options "$1") $(_tcd_options ''); do
        [[ $o == "$2=" ]] && return 0
    done
    return 1
}

# COMPREPLY from the words in $1 that start with $cur.
_tcd_reply()
{
    mapfile -t COMPREPLY < <(compgen -W "$1" -- "$cur")
}

# File or directory names.
_tcd_files()
{
    compopt -o filenames 2>/dev/null
    mapfile -t COMPREPLY < <(compgen -"${1:-f}" -- "$cur")
}

_tcd()
{
    local cur prev words cword
    words=("${COMP_WORDS[@]}")
    cword=$COMP_CWORD
    cur=${words[cword]}
    prev=
    ((cword > 0)) && prev=${words[cword - 1]}

    # bash splits "--opt=value" at '=' (COMP_WORDBREAKS): the value's option
    # is then two words back.
    if [[ $cur == = ]]; then
        cur=
    elif [[ $prev == = ]] && ((cword > 1)); then
        prev=${words[cword - 2]}
    elif [[ $cur == --*=* ]]; then   # '=' not a word break here
        prev=${cur%%=*}
        cur=${cur#*=}
    fi

    local _tcd_bin=${words[0]}
    [[ $_tcd_bin == */* && -x ${_tcd_bin/#\~/$HOME} ]] && _tcd_bin=${_tcd_bin/#\~/$HOME} || _tcd_bin=tcd

    # Walk the words before the cursor: the command path, the positionals
    # after it, and the values of -d/--pin-dir and --netns.
    local path='' npos=0 i w opt val
    local _tcd_pin_dir='' netns='' subs
    local -a positionals=()
    for ((i = 1; i < cword; i++)); do
        w=${words[i]}
        case $w in
            --*=*) opt=${w%%=*} val=${w#*=} ;;
            -*)
                opt=$w val=
                if _tcd_takes_value "$path" "$w"; then
                    if [[ ${words[i + 1]} == = ]]; then ((i++)); fi
                    ((i + 1 < cword)) && val=${words[i + 1]}
                    ((i++))
                elif [[ $w == -d?* ]]; then
                    opt=-d val=${w#-d}
                fi
                ;;
            =) continue ;;
            *)
                subs=" $(_tcd_subcommands "$path") "
                if ((npos == 0)) && [[ $subs == *" $w "* ]]; then
                    path=${path:+$path }$w
                else
                    positionals+=("$w")
                    ((npos++))
                fi
                continue
                ;;
        esac
        case $opt in
            -d | --pin-dir) _tcd_pin_dir=${val/#\~/$HOME} ;;
            --netns) netns=$val ;;
        esac
    done

    # Options whose values differ by command (the case below holds the
    # rest): monitor's --key is one of the instance's keys, not a kind.
    if [[ $path == monitor && $prev == --key ]]; then
        _tcd_reply "$(_tcd_key_names)"
        return
    fi
    if [[ $path == monitor && $prev == --iface ]]; then
        _tcd_reply "$(_tcd_interfaces "$netns")"
        return
    fi

    # The value of an option.
    case $prev in
        -d | --pin-dir)
            _tcd_files d
            return
            ;;
        --mode)
            _tcd_reply 'auto native skb hw'
            return
            ;;
        --miss-action)
            _tcd_reply 'pass drop next'
            return
            ;;
        --direction)
            _tcd_reply 'ingress egress'
            return
            ;;
        --format)
            _tcd_reply 'plain json prometheus'
            return
            ;;
        --key)
            _tcd_reply 'proto port'
            return
            ;;
        --hook)
            _tcd_reply 'xdp tc'
            return
            ;;
        -o | --output | -f | --file)
            _tcd_files f
            return
            ;;
        --netns)
            if [[ $cur == */* || $cur == .* ]]; then
                _tcd_files f
            else
                _tcd_reply "$(_tcd_netns_names)"
            fi
            return
            ;;
        --pcap)
            _tcd_files f
            return
            ;;
        --interval | --count | --hex | --prog | --listen)
            return
            ;;
    esac

    if [[ $cur == -* ]]; then
        local opts
        opts=$(_tcd_options '')
        [[ -n $path ]] && opts="$(_tcd_options "$path") $opts"
        _tcd_reply "${opts//=/}"
        return
    fi

    subs=$(_tcd_subcommands "$path")
    if [[ -n $subs ]]; then
        ((npos == 0)) && _tcd_reply "$subs"
        return
    fi

    case $path in
        attach)
            ((npos == 0)) && _tcd_reply "$(_tcd_interfaces "$netns")"
            ;;
        detach)
            if ((npos == 0)); then
                local attached
                attached=$(_tcd_attached)
                [[ -n $attached ]] || attached=$(_tcd_interfaces "$netns")
                _tcd_reply "$attached"
            fi
            ;;
        'map set')
            # KEY HANDLER [KEY HANDLER]...
            if ((npos % 2 == 0)); then
                _tcd_reply "$(_tcd_key_names)"
            else
                if [[ $cur == /* ]]; then
                    _tcd_files f
                else
                    _tcd_reply "$(_tcd_handlers)"
                fi
            fi
            ;;
        'handler load')
            ((npos == 0)) && _tcd_files f
            ;;
        'handler unload')
            ((npos == 0)) && _tcd_reply "$(_tcd_handlers | command grep -vxE 'tcp_handler|udp_handler|pass|drop')"
            ;;
        'map del')
            # Keys not yet on the line.
            local keys k p left=
            keys=$(_tcd_wired_keys) || keys=$(_tcd_key_names)
            for k in $keys; do
                for p in "${positionals[@]}"; do [[ ${p,,} == "$k" ]] && continue 2; done
                left+="$k "
            done
            _tcd_reply "$left"
            ;;
    esac
}
complete -F _tcd tcd

# ex: filetype=sh
