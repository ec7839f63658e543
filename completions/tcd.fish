# fish completion for tcd(8)
#
# Install as /usr/share/fish/vendor_completions.d/tcd.fish, or source it.
# Live values come from the system and from tcd itself, the way bpftool's
# completion asks bpftool: interfaces (ip -o link show, or /sys/class/net),
# network namespaces (ip netns list), handlers (tcd -j handler list) and
# wired keys (tcd -j map list), honouring a -d/--pin-dir given on the line
# (else tcd's own default: $TCD_PIN_DIR, else /sys/fs/bpf/tcd).
#
# tests/sync/sync_test.cpp checks this file against the CLI11 definitions,
# so keep its shape: __tcd_subcommands and __tcd_value_options are the
# command tree; each command's options are 'complete' lines whose condition
# starts with  __tcd_is 'PATH'  (global options have no __tcd_is), and an
# option that takes a value has -r or -x.

# The subcommands of a command path ('' is the top level).
function __tcd_subcommands
    switch "$argv[1]"
        case ''
            echo attach detach map stats load unload status handler trace object apply monitor
        case 'map'
            echo set del list
        case 'handler'
            echo load list unload
    end
end

# The options that take a value (any command).
function __tcd_value_options
    echo -d --pin-dir --mode --netns --priority --direction --order --interval --count --format --listen --key --hook --miss-action \
        --prog --pcap --hex --repeat -o --output -f --file --iface --level --duration --sample --rate --snaplen -w --write
end

# Reads the line before the cursor. Prints three lines: the command path
# ('' at the top level), the pin dir given with -d/--pin-dir (or ''), the
# network namespace given with --netns (or ''); then the positionals after
# the command path, one per line.
function __tcd_parse
    set -l tokens (commandline -opc)
    set -e tokens[1]
    set -l value_opts (string split ' ' -- (__tcd_value_options))
    set -l path ''
    set -l pin_dir ''
    set -l netns ''
    set -l positionals
    set -l want ''
    for t in $tokens
        if test -n "$want"
            switch $want
                case -d --pin-dir
                    set pin_dir $t
                case --netns
                    set netns $t
            end
            set want ''
            continue
        end
        switch $t
            case '--pin-dir=*'
                set pin_dir (string replace -- '--pin-dir=' '' $t)
            case '--netns=*'
                set netns (string replace -- '--netns=' '' $t)
            case '--*=*'
            case '-*'
                if contains -- $t $value_opts
                    set want $t
                else if string match -q -- '-d?*' $t
                    set pin_dir (string sub -s 3 -- $t)
                end
            case '*'
                if test (count $positionals) -eq 0; and contains -- $t (string split ' ' -- (__tcd_subcommands "$path"))
                    set path (string trim -- "$path $t")
                else
                    set -a positionals $t
                end
        end
    end
    printf '%s\n' "$path" (string replace -r '^~' $HOME -- "$pin_dir") "$netns" $positionals
end

# True when the command path is $argv[1].
function __tcd_is
    set -l p (__tcd_parse)
    test "$p[1]" = "$argv[1]"
end

# True when $argv[1] positionals follow the command path.
function __tcd_npos
    set -l p (__tcd_parse)
    test (math (count $p) - 3) -eq $argv[1]
end

# Whether the positional being completed is at an even (0) or odd (1) place.
function __tcd_npos_parity
    set -l p (__tcd_parse)
    set -l n (math (count $p) - 3)
    test (math "$n % 2") -eq $argv[1]
end

# tcd -j ARGS, against the pin dir named on the line if any.
function __tcd_json
    set -l p (__tcd_parse)
    set -l tcd tcd
    set -l first (commandline -opc)[1]
    if string match -q -- '*/*' $first; and test -x $first
        set tcd $first
    end
    if test -n "$p[2]"
        command $tcd -d $p[2] -j $argv 2>/dev/null
    else
        command $tcd -j $argv 2>/dev/null
    end
end

# Protocol names for KEY: /etc/protocols (names and aliases) and the table
# built into tcd, with the extra spellings tcd accepts.
function __tcd_protocols
    begin
        if test -r /etc/protocols
            awk '{ sub(/#.*/, ""); if (NF < 2 || $2 !~ /^[0-9]+$/ || $2 > 255) next;
                   for (i = 1; i <= NF; i++) if (i != 2) print tolower($i) }' /etc/protocols
        end
        printf '%s\n' hopopt icmp igmp ggp ipencap st tcp egp igp pup udp hmp xns-idp rdp \
            iso-tp4 dccp xtp ddp idpr-cmtp ipv6 ipv6-route ipv6-frag idrp rsvp gre esp ah \
            skip ipv6-icmp ipv6-nonxt ipv6-opts rspf vmtp eigrp ospf ax.25 ipip etherip encap \
            pim ipcomp vrrp l2tp isis sctp fc mobility-header udplite mpls-in-ip manet hip \
            shim6 wesp rohc ethernet \
            icmpv6 icmp6 ipv6icmp ip ipsec-esp ipsec-ah ospfigp ip-encap ipv4
    end 2>/dev/null | sort -u
end

# Service names for KEY on a port instance: /etc/services (tcp and udp) and
# the table built into tcd, with its extra spellings.
function __tcd_services
    begin
        if test -r /etc/services
            awk '{ sub(/#.*/, ""); if (NF < 2 || $2 !~ /^[0-9]+\/(tcp|udp)$/) next;
                   for (i = 1; i <= NF; i++) if (i != 2) print tolower($i) }' /etc/services
        end
        printf '%s\n' ftp-data ftp ssh telnet smtp domain bootps bootpc tftp http pop3 ntp \
            imap2 snmp bgp ldap https submissions syslog submission ldaps domain-s imaps pop3s \
            radius nfs mysql stun vxlan sip postgresql redis sun-sr-https http-alt jetdirect \
            dns www imap postgres webcache http-proxy
    end 2>/dev/null | sort -u
end

# KEY: services on a port instance, else protocols.
function __tcd_keys
    set -l status_json (__tcd_json status)
    if string match -q -- '*"key":"port"*' "$status_json"
        __tcd_services
    else
        __tcd_protocols
    end
end

# Interfaces, in the network namespace given with --netns if any.
function __tcd_interfaces
    set -l ns (__tcd_parse)[3]
    set -l out
    if test -z "$ns"
        set out (ip -o link show 2>/dev/null)
        if test (count $out) -eq 0
            ls /sys/class/net 2>/dev/null
            return
        end
    else if string match -q -- '*/*' $ns
        set out (nsenter --net=$ns ip -o link show 2>/dev/null)
    else
        set out (ip -n $ns -o link show 2>/dev/null)
    end
    # "2: eth0: <...>" or "5: veth0@if4: <...>"
    printf '%s\n' $out | awk -F': ' 'NF > 1 { sub(/@.*/, "", $2); print $2 }'
end

# Interfaces the dispatcher is attached to, else all of them.
function __tcd_detach_interfaces
    set -l names (__tcd_json status | string match -ar '"ifname":"[^"]*"' | string replace -r '"ifname":"([^"]*)"' '$1')
    if test (count $names) -gt 0
        printf '%s\n' $names
    else
        __tcd_interfaces
    end
end

# Network namespace names (ip netns list prints "NAME (id: N)").
function __tcd_netns
    begin
        ip netns list 2>/dev/null; or ls /run/netns 2>/dev/null
    end | string replace -r ' .*' ''
end

# Handler names pinned in the pin dir; the built-in ones when tcd cannot say.
function __tcd_handlers
    set -l json (__tcd_json handler list)
    if string match -q -- '[*' "$json"
        string match -ar '"name":"[^"]*"' -- "$json" | string replace -r '"name":"([^"]*)"' '$1'
    else
        printf '%s\n' tcp_handler udp_handler pass drop
    end
end

# Wired keys not yet on the line: the protocol name, else the number; all
# protocol names when tcd cannot say.
function __tcd_wired_keys
    set -l json (__tcd_json map list)
    set -l keys
    if string match -q -- '[*' "$json"
        for obj in (string split '{' -- "$json")
            set -l name (string match -r '"proto":"([^"]*)"' -- $obj)[2]
            set -l num (string match -r '"key":([0-9]+)' -- $obj)[2]
            if test -n "$name"
                set -a keys $name
            else if test -n "$num"
                set -a keys $num
            end
        end
    else
        set keys (__tcd_keys)
    end
    set -l given (string lower -- (__tcd_parse)[4..-1])
    for k in $keys
        contains -- $k $given; or echo $k
    end
end

complete -c tcd -f

# Global options (before or after the command).
complete -c tcd -s d -l pin-dir -x -a '(__fish_complete_directories (commandline -ct))' -d "the instance's bpffs directory"
complete -c tcd -s j -l json -d 'JSON on stdout (JSON Lines for streams)'
complete -c tcd -s p -l pretty -d 'indented JSON (implies -j)'
complete -c tcd -s q -l quiet -d 'print nothing on success'
complete -c tcd -s v -l verbose -d 'libbpf/libxdp debug log on stderr'
complete -c tcd -s V -l version -d 'version, and the libbpf/libxdp versions in use'
complete -c tcd -s h -l help -d 'print help and exit'

# Commands.
complete -c tcd -n "__tcd_is ''" -a attach -d "attach the dispatcher to IFACE (XDP, or tc with --direction)"
complete -c tcd -n "__tcd_is ''" -a detach -d 'take the dispatcher off IFACE (or everywhere)'
complete -c tcd -n "__tcd_is ''" -a map -d 'the jump table: which handler runs for which key'
complete -c tcd -n "__tcd_is ''" -a stats -d 'per-key packets, bytes and misses'
complete -c tcd -n "__tcd_is ''" -a load -d 'load the dispatcher and its built-in handlers'
complete -c tcd -n "__tcd_is ''" -a unload -d 'detach everywhere, then remove the pins'
complete -c tcd -n "__tcd_is 'unload'" -l force -d 'unwire it in its parents first'
complete -c tcd -n "__tcd_is ''" -a status -d 'what is loaded, wired and attached'
complete -c tcd -n "__tcd_is 'status'" -l scan -d 'find parents and children by reading every instance'
complete -c tcd -n "__tcd_is ''" -a handler -d 'handler programs pinned beside the dispatcher'
complete -c tcd -n "__tcd_is ''" -a trace -d 'run frames through the dispatcher (BPF_PROG_TEST_RUN)'
complete -c tcd -n "__tcd_is ''" -a object -d 'write the embedded dispatcher ELF'
complete -c tcd -n "__tcd_is ''" -a apply -d 'make an instance what a YAML file describes'

# tcd attach IFACE [--mode auto|native|skb|hw] [--netns NAME|PATH] [--priority N] [--alone] [--direction D] [--order WHERE] [--force]
complete -c tcd -n "__tcd_is 'attach'; and __tcd_npos 0" -a '(__tcd_interfaces)'
complete -c tcd -n "__tcd_is 'attach'" -l mode -x -a 'auto native skb hw' -d 'XDP mode (default auto)'
complete -c tcd -n "__tcd_is 'attach'" -l netns -x -a '(__tcd_netns)' -d 'network namespace (NAME or a path)'
complete -c tcd -n "__tcd_is 'attach'" -l priority -x -d 'XDP: libxdp run priority, lower runs first (default 50)'
complete -c tcd -n "__tcd_is 'attach'" -l alone -d 'XDP: attach alone, not through libxdp\'s dispatcher'
complete -c tcd -n "__tcd_is 'attach'" -l direction -x -a 'ingress egress' -d 'tc instances: ingress (default) or egress'
complete -c tcd -n "__tcd_is 'attach'" -l order -x -d 'tcx links: first, last (default), before:PROG or after:PROG in the chain'
complete -c tcd -n "__tcd_is 'attach'" -l force -d 'replace another program running there'

# tcd detach IFACE [--netns NAME|PATH] | tcd detach --all
complete -c tcd -n "__tcd_is 'detach'; and __tcd_npos 0" -a '(__tcd_detach_interfaces)'
complete -c tcd -n "__tcd_is 'detach'" -l netns -x -a '(__tcd_netns)' -d 'network namespace (NAME or a path)'
complete -c tcd -n "__tcd_is 'detach'" -l direction -x -a 'ingress egress' -d 'tc instances: only this direction'
complete -c tcd -n "__tcd_is 'detach'" -l all -d 'every interface the dispatcher runs on'

# tcd map set KEY HANDLER [KEY HANDLER]... | map del KEY... | map list [--scan]
complete -c tcd -n "__tcd_is 'map'" -a set -d 'wire KEY to HANDLER'
complete -c tcd -n "__tcd_is 'map'" -a del -d 'unwire keys'
complete -c tcd -n "__tcd_is 'map'" -a list -d 'the wired keys'
complete -c tcd -n "__tcd_is 'map set'; and __tcd_npos_parity 0" -a '(__tcd_keys)'
complete -c tcd -n "__tcd_is 'map set'; and __tcd_npos_parity 1" -a '(__tcd_handlers)'
complete -c tcd -n "__tcd_is 'map set'; and __tcd_npos_parity 1; and string match -q -- '/*' (commandline -ct)" -F
complete -c tcd -n "__tcd_is 'map del'" -a '(__tcd_wired_keys)'
complete -c tcd -n "__tcd_is 'map list'" -l scan -d 'port instances: read every jump-table entry'

# tcd stats [--watch] [--interval SECONDS] [--count N] [--all] [--reset] [--format F] [--listen ADDR:PORT]
complete -c tcd -n "__tcd_is 'stats'" -l watch -d 'redraw every interval; Ctrl-C quits'
complete -c tcd -n "__tcd_is 'stats'" -l interval -x -d 'seconds between readings with --watch'
complete -c tcd -n "__tcd_is 'stats'" -l count -x -d 'stop after N readings with --watch'
complete -c tcd -n "__tcd_is 'stats'" -l all -d 'all 256 keys'
complete -c tcd -n "__tcd_is 'stats'" -l reset -d 'print, then zero the counters'
complete -c tcd -n "__tcd_is 'stats'" -l format -x -a 'plain json prometheus' -d 'output format'
complete -c tcd -n "__tcd_is 'stats'" -l listen -x -d 'serve /metrics over HTTP at ADDR:PORT until SIGTERM'

# tcd load [--miss-action pass|drop|next] [--force]
complete -c tcd -n "__tcd_is 'load'" -l key -x -a 'proto port' -d 'IP protocol (default) or destination port'
complete -c tcd -n "__tcd_is 'load'" -l hook -x -a 'xdp tc' -d 'XDP (default) or tc clsact'
complete -c tcd -n "__tcd_is 'load'" -l miss-action -x -a 'pass drop next' -d 'verdict for a key with no handler (next: tc)'
complete -c tcd -n "__tcd_is 'load'" -l force -d 'reload a loaded instance live'

# tcd handler list
complete -c tcd -n "__tcd_is 'handler'" -a load -d "load a BPF ELF's programs as handlers"
complete -c tcd -n "__tcd_is 'handler'" -a list -d 'pinned handlers and their keys'
complete -c tcd -n "__tcd_is 'handler'" -a unload -d 'remove a user handler'
complete -c tcd -n "__tcd_is 'handler load'; and __tcd_npos 0" -F
complete -c tcd -n "__tcd_is 'handler load'" -l prog -x -d 'load only this program (repeatable)'
complete -c tcd -n "__tcd_is 'handler unload'; and __tcd_npos 0" -a '(__tcd_handlers)'
complete -c tcd -n "__tcd_is 'handler unload'" -l force -d 'unwire its keys first'

# object
complete -c tcd -n "__tcd_is 'object'" -s o -l output -r -F -d 'the file to write'
complete -c tcd -n "__tcd_is 'object'" -l key -x -a 'proto port' -d 'proto (default) or port'
complete -c tcd -n "__tcd_is 'object'" -l hook -x -a 'xdp tc' -d 'xdp (default) or tc'

# apply
complete -c tcd -n "__tcd_is 'apply'" -s f -l file -r -F -d 'the YAML description'
complete -c tcd -n "__tcd_is 'apply'" -l dry-run -d 'print the changes, make none'

# tcd trace (--pcap FILE | --hex HEXBYTES) [--key proto|port] [--hook xdp|tc] [--repeat N]
complete -c tcd -n "__tcd_is 'trace'" -l pcap -r -F -d 'a pcap or pcapng capture'
complete -c tcd -n "__tcd_is 'trace'" -l hex -x -d 'one frame as hex bytes'
complete -c tcd -n "__tcd_is 'trace'" -l key -x -a 'proto port' -d 'with no instance loaded: proto (default) or port'
complete -c tcd -n "__tcd_is 'trace'" -l hook -x -a 'xdp tc' -d 'with no instance loaded: xdp (default) or tc'
complete -c tcd -n "__tcd_is 'trace'" -l repeat -x -d 'time each level of each frame with N test runs, ns per run'

# tcd monitor [--key K]... [--misses] [--iface IFACE [--netns NS]] [--level N] [--count N] [--duration S] [--sample N] [--rate N] [--snaplen N] [-w FILE]
complete -c tcd -n "__tcd_is ''" -a monitor -d 'watch live frames as the dispatcher handles them'
complete -c tcd -n "__tcd_is 'monitor'" -l key -x -d 'only this key (repeatable)'
complete -c tcd -n "__tcd_is 'monitor'" -l misses -d 'only frames whose key has no handler'
complete -c tcd -n "__tcd_is 'monitor'" -l iface -x -a '(__tcd_interfaces)' -d 'only frames on this interface'
complete -c tcd -n "__tcd_is 'monitor'" -l netns -x -a '(__tcd_netns)' -d 'the interface\'s network namespace'
complete -c tcd -n "__tcd_is 'monitor'" -l level -x -d 'only this level of the instance tree'
complete -c tcd -n "__tcd_is 'monitor'" -l count -x -d 'stop after N events'
complete -c tcd -n "__tcd_is 'monitor'" -l duration -x -d 'stop after S seconds'
complete -c tcd -n "__tcd_is 'monitor'" -l sample -x -d 'one frame in N is a candidate'
complete -c tcd -n "__tcd_is 'monitor'" -l rate -x -d 'events per second at most'
complete -c tcd -n "__tcd_is 'monitor'" -l snaplen -x -d 'bytes of each frame captured'
complete -c tcd -n "__tcd_is 'monitor'" -s w -l write -r -F -d 'write the frames to FILE as pcapng'
