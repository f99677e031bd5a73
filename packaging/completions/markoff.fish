# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_markoff_global_optspecs
    string join \n h/help V/version
end

function __fish_markoff_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_markoff_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_markoff_using_subcommand
    set -l cmd (__fish_markoff_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c markoff -n "__fish_markoff_needs_command" -s h -l help -d 'Print help'
complete -c markoff -n "__fish_markoff_needs_command" -s V -l version -d 'Print version'
complete -c markoff -n "__fish_markoff_needs_command" -f -a "run" -d 'Run the gateway daemon (what the systemd unit starts)'
complete -c markoff -n "__fish_markoff_needs_command" -f -a "validate" -d 'Check a config file: prints every mistake as file:line:col with a hint. Exits 0 when valid, 78 (EX_CONFIG) when not'
complete -c markoff -n "__fish_markoff_needs_command" -f -a "demo" -d 'Run a whole simulated building through the real pipeline, with a live view. Needs no external service. Stop with q or Ctrl-C'
complete -c markoff -n "__fish_markoff_needs_command" -f -a "status" -d 'Show the running daemon\'s status'
complete -c markoff -n "__fish_markoff_needs_command" -f -a "modbus" -d 'Modbus commissioning: read registers with every interpretation, scan a line for unit ids, print the planned requests of a config'
complete -c markoff -n "__fish_markoff_needs_command" -f -a "alarms" -d 'Show open alarms (active or awaiting acknowledgement), or every alarm with --all'
complete -c markoff -n "__fish_markoff_needs_command" -f -a "ask" -d 'Ask the on-site assistant a question (or run one of its slash commands, e.g. "/status") through the running daemon. Works without the LLM too: the answer then comes from local data and says so'
complete -c markoff -n "__fish_markoff_needs_command" -f -a "ack" -d 'Acknowledge an alarm, as the account running this command (through the daemon\'s socket: group markoff-operators, and an operator in [[users]] by unix_user)'
complete -c markoff -n "__fish_markoff_needs_command" -f -a "shelve" -d 'Shelve an alarm: no notifications for a while (operator role required)'
complete -c markoff -n "__fish_markoff_needs_command" -f -a "unshelve" -d 'Lift an alarm\'s shelving (operator role required)'
complete -c markoff -n "__fish_markoff_needs_command" -f -a "sync" -d 'Sync to the central PostgreSQL'
complete -c markoff -n "__fish_markoff_needs_command" -f -a "readings" -d 'Show the latest reading of every sensor, or one sensor\'s recent history'
complete -c markoff -n "__fish_markoff_needs_command" -f -a "render" -d 'Draw a floor plan or a sensor\'s history chart as a PNG picture, through the running daemon, or from the buffer when the daemon does not answer (or with --db / --data-dir)'
complete -c markoff -n "__fish_markoff_needs_command" -f -a "import" -d 'Translate another tool\'s config into a Markoff config: a Telegraf config ([[inputs.modbus]], [[inputs.mqtt_consumer]]) or a ThingsBoard IoT Gateway Modbus connector. Prints the config (or writes --output) and reports on stderr every setting that could not be carried over, and every one carried with a change'
complete -c markoff -n "__fish_markoff_needs_command" -f -a "completions" -d 'Print a shell completion script. The Debian package installs them for bash, zsh and fish; elsewhere e.g. `markoff completions bash > ~/.local/share/bash-completion/completions/markoff`'
complete -c markoff -n "__fish_markoff_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c markoff -n "__fish_markoff_using_subcommand run" -s c -l config -d 'Config file' -r -F
complete -c markoff -n "__fish_markoff_using_subcommand run" -s h -l help -d 'Print help'
complete -c markoff -n "__fish_markoff_using_subcommand run" -s V -l version -d 'Print version'
complete -c markoff -n "__fish_markoff_using_subcommand validate" -s c -l config -d 'Config file' -r -F
complete -c markoff -n "__fish_markoff_using_subcommand validate" -s h -l help -d 'Print help'
complete -c markoff -n "__fish_markoff_using_subcommand validate" -s V -l version -d 'Print version'
complete -c markoff -n "__fish_markoff_using_subcommand demo" -l data-dir -d 'Keep the buffer (markoff.db) and log in this directory instead of a temporary one' -r -F
complete -c markoff -n "__fish_markoff_using_subcommand demo" -l duration -d 'Stop by itself after this long ("30s", "5m")' -r
complete -c markoff -n "__fish_markoff_using_subcommand demo" -l plain -d 'Print plain status lines instead of the full-screen view (automatic when stdout is not a terminal)'
complete -c markoff -n "__fish_markoff_using_subcommand demo" -s h -l help -d 'Print help'
complete -c markoff -n "__fish_markoff_using_subcommand demo" -s V -l version -d 'Print version'
complete -c markoff -n "__fish_markoff_using_subcommand status" -l api -d 'Base URL of the daemon\'s local API (TCP). Default: from [http] listen in the config file, else http://127.0.0.1:9780. With it, actions need --token-file' -r
complete -c markoff -n "__fish_markoff_using_subcommand status" -l socket -d 'The daemon\'s Unix socket; actions through it are done as the account running this command. Default (without --api): [http] socket of the config, /run/markoff/api.sock' -r -F
complete -c markoff -n "__fish_markoff_using_subcommand status" -l token-file -d 'File holding a bearer token of [[http.token]], for actions over TCP (--api)' -r -F
complete -c markoff -n "__fish_markoff_using_subcommand status" -s c -l config -d 'Config file to read [http] listen and socket from' -r -F
complete -c markoff -n "__fish_markoff_using_subcommand status" -l json -d 'Machine-readable output'
complete -c markoff -n "__fish_markoff_using_subcommand status" -s h -l help -d 'Print help'
complete -c markoff -n "__fish_markoff_using_subcommand status" -s V -l version -d 'Print version'
complete -c markoff -n "__fish_markoff_using_subcommand modbus; and not __fish_seen_subcommand_from read scan holes plan help" -s h -l help -d 'Print help'
complete -c markoff -n "__fish_markoff_using_subcommand modbus; and not __fish_seen_subcommand_from read scan holes plan help" -s V -l version -d 'Print version'
complete -c markoff -n "__fish_markoff_using_subcommand modbus; and not __fish_seen_subcommand_from read scan holes plan help" -f -a "read" -d 'Read registers and print them raw and as every type in every byte order, so the right type and order can be picked in one look'
complete -c markoff -n "__fish_markoff_using_subcommand modbus; and not __fish_seen_subcommand_from read scan holes plan help" -f -a "scan" -d 'List the unit ids that answer on a line (an exception answer counts: a device is there)'
complete -c markoff -n "__fish_markoff_using_subcommand modbus; and not __fish_seen_subcommand_from read scan holes plan help" -f -a "holes" -d 'List the address holes the running gateway has learned per device (ranges a device answered "illegal data address" for), or forget them with --forget. Readings and alarms are left alone'
complete -c markoff -n "__fish_markoff_using_subcommand modbus; and not __fish_seen_subcommand_from read scan holes plan help" -f -a "plan" -d 'Print the read requests per cycle of every Modbus device in a config'
complete -c markoff -n "__fish_markoff_using_subcommand modbus; and not __fish_seen_subcommand_from read scan holes plan help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c markoff -n "__fish_markoff_using_subcommand modbus; and __fish_seen_subcommand_from read" -l controller -d 'tcp://host:port or file:///dev/ttyUSB0' -r
complete -c markoff -n "__fish_markoff_using_subcommand modbus; and __fish_seen_subcommand_from read" -l transmission-mode -d 'TCP, RTU or RTUoverTCP (default from the controller)' -r
complete -c markoff -n "__fish_markoff_using_subcommand modbus; and __fish_seen_subcommand_from read" -l baud-rate -d 'Serial baud rate' -r
complete -c markoff -n "__fish_markoff_using_subcommand modbus; and __fish_seen_subcommand_from read" -l data-bits -d 'Serial data bits' -r
complete -c markoff -n "__fish_markoff_using_subcommand modbus; and __fish_seen_subcommand_from read" -l parity -d 'Serial parity: N, E or O' -r
complete -c markoff -n "__fish_markoff_using_subcommand modbus; and __fish_seen_subcommand_from read" -l stop-bits -d 'Serial stop bits' -r
complete -c markoff -n "__fish_markoff_using_subcommand modbus; and __fish_seen_subcommand_from read" -l timeout -d 'Time allowed per request' -r
complete -c markoff -n "__fish_markoff_using_subcommand modbus; and __fish_seen_subcommand_from read" -l slave -d 'Unit id' -r
complete -c markoff -n "__fish_markoff_using_subcommand modbus; and __fish_seen_subcommand_from read" -l register -d 'Register table: holding, input, coil, discrete (optional with "40001"-style addresses)' -r
complete -c markoff -n "__fish_markoff_using_subcommand modbus; and __fish_seen_subcommand_from read" -l address -d 'First address: a number (see --address-base) or "40001" / "4x0001"' -r
complete -c markoff -n "__fish_markoff_using_subcommand modbus; and __fish_seen_subcommand_from read" -l count -d 'Registers (or bits) to read' -r
complete -c markoff -n "__fish_markoff_using_subcommand modbus; and __fish_seen_subcommand_from read" -l address-base -d 'Whether numeric addresses count from 0 (wire) or 1 (manual register numbers)' -r
complete -c markoff -n "__fish_markoff_using_subcommand modbus; and __fish_seen_subcommand_from read" -l json -d 'Machine-readable output (the raw registers or bits)'
complete -c markoff -n "__fish_markoff_using_subcommand modbus; and __fish_seen_subcommand_from read" -s h -l help -d 'Print help'
complete -c markoff -n "__fish_markoff_using_subcommand modbus; and __fish_seen_subcommand_from read" -s V -l version -d 'Print version'
complete -c markoff -n "__fish_markoff_using_subcommand modbus; and __fish_seen_subcommand_from scan" -l controller -d 'tcp://host:port or file:///dev/ttyUSB0' -r
complete -c markoff -n "__fish_markoff_using_subcommand modbus; and __fish_seen_subcommand_from scan" -l transmission-mode -d 'TCP, RTU or RTUoverTCP (default from the controller)' -r
complete -c markoff -n "__fish_markoff_using_subcommand modbus; and __fish_seen_subcommand_from scan" -l baud-rate -d 'Serial baud rate' -r
complete -c markoff -n "__fish_markoff_using_subcommand modbus; and __fish_seen_subcommand_from scan" -l data-bits -d 'Serial data bits' -r
complete -c markoff -n "__fish_markoff_using_subcommand modbus; and __fish_seen_subcommand_from scan" -l parity -d 'Serial parity: N, E or O' -r
complete -c markoff -n "__fish_markoff_using_subcommand modbus; and __fish_seen_subcommand_from scan" -l stop-bits -d 'Serial stop bits' -r
complete -c markoff -n "__fish_markoff_using_subcommand modbus; and __fish_seen_subcommand_from scan" -l timeout -d 'Time allowed per request' -r
complete -c markoff -n "__fish_markoff_using_subcommand modbus; and __fish_seen_subcommand_from scan" -l from -d 'First unit id' -r
complete -c markoff -n "__fish_markoff_using_subcommand modbus; and __fish_seen_subcommand_from scan" -l to -d 'Last unit id' -r
complete -c markoff -n "__fish_markoff_using_subcommand modbus; and __fish_seen_subcommand_from scan" -l register -d 'Register table probed' -r
complete -c markoff -n "__fish_markoff_using_subcommand modbus; and __fish_seen_subcommand_from scan" -l address -d 'Address probed' -r
complete -c markoff -n "__fish_markoff_using_subcommand modbus; and __fish_seen_subcommand_from scan" -s h -l help -d 'Print help'
complete -c markoff -n "__fish_markoff_using_subcommand modbus; and __fish_seen_subcommand_from scan" -s V -l version -d 'Print version'
complete -c markoff -n "__fish_markoff_using_subcommand modbus; and __fish_seen_subcommand_from holes" -l device -d 'Only this device' -r
complete -c markoff -n "__fish_markoff_using_subcommand modbus; and __fish_seen_subcommand_from holes" -l api -d 'Base URL of the daemon\'s local API (TCP). Default: from [http] listen in the config file, else http://127.0.0.1:9780. With it, actions need --token-file' -r
complete -c markoff -n "__fish_markoff_using_subcommand modbus; and __fish_seen_subcommand_from holes" -l socket -d 'The daemon\'s Unix socket; actions through it are done as the account running this command. Default (without --api): [http] socket of the config, /run/markoff/api.sock' -r -F
complete -c markoff -n "__fish_markoff_using_subcommand modbus; and __fish_seen_subcommand_from holes" -l token-file -d 'File holding a bearer token of [[http.token]], for actions over TCP (--api)' -r -F
complete -c markoff -n "__fish_markoff_using_subcommand modbus; and __fish_seen_subcommand_from holes" -s c -l config -d 'Config file to read [http] listen and socket from' -r -F
complete -c markoff -n "__fish_markoff_using_subcommand modbus; and __fish_seen_subcommand_from holes" -l forget -d 'Clear the holes: the next cycles read across them again and learn those still there'
complete -c markoff -n "__fish_markoff_using_subcommand modbus; and __fish_seen_subcommand_from holes" -l json -d 'Machine-readable output'
complete -c markoff -n "__fish_markoff_using_subcommand modbus; and __fish_seen_subcommand_from holes" -s h -l help -d 'Print help'
complete -c markoff -n "__fish_markoff_using_subcommand modbus; and __fish_seen_subcommand_from holes" -s V -l version -d 'Print version'
complete -c markoff -n "__fish_markoff_using_subcommand modbus; and __fish_seen_subcommand_from plan" -s c -l config -d 'Config file' -r -F
complete -c markoff -n "__fish_markoff_using_subcommand modbus; and __fish_seen_subcommand_from plan" -s h -l help -d 'Print help'
complete -c markoff -n "__fish_markoff_using_subcommand modbus; and __fish_seen_subcommand_from plan" -s V -l version -d 'Print version'
complete -c markoff -n "__fish_markoff_using_subcommand modbus; and __fish_seen_subcommand_from help" -f -a "read" -d 'Read registers and print them raw and as every type in every byte order, so the right type and order can be picked in one look'
complete -c markoff -n "__fish_markoff_using_subcommand modbus; and __fish_seen_subcommand_from help" -f -a "scan" -d 'List the unit ids that answer on a line (an exception answer counts: a device is there)'
complete -c markoff -n "__fish_markoff_using_subcommand modbus; and __fish_seen_subcommand_from help" -f -a "holes" -d 'List the address holes the running gateway has learned per device (ranges a device answered "illegal data address" for), or forget them with --forget. Readings and alarms are left alone'
complete -c markoff -n "__fish_markoff_using_subcommand modbus; and __fish_seen_subcommand_from help" -f -a "plan" -d 'Print the read requests per cycle of every Modbus device in a config'
complete -c markoff -n "__fish_markoff_using_subcommand modbus; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c markoff -n "__fish_markoff_using_subcommand alarms" -l api -d 'Base URL of the daemon\'s local API (TCP). Default: from [http] listen in the config file, else http://127.0.0.1:9780. With it, actions need --token-file' -r
complete -c markoff -n "__fish_markoff_using_subcommand alarms" -l socket -d 'The daemon\'s Unix socket; actions through it are done as the account running this command. Default (without --api): [http] socket of the config, /run/markoff/api.sock' -r -F
complete -c markoff -n "__fish_markoff_using_subcommand alarms" -l token-file -d 'File holding a bearer token of [[http.token]], for actions over TCP (--api)' -r -F
complete -c markoff -n "__fish_markoff_using_subcommand alarms" -s c -l config -d 'Config file to read [http] listen and socket from' -r -F
complete -c markoff -n "__fish_markoff_using_subcommand alarms" -l all -d 'Every alarm, including those in normal state'
complete -c markoff -n "__fish_markoff_using_subcommand alarms" -l json -d 'Machine-readable output'
complete -c markoff -n "__fish_markoff_using_subcommand alarms" -s h -l help -d 'Print help'
complete -c markoff -n "__fish_markoff_using_subcommand alarms" -s V -l version -d 'Print version'
complete -c markoff -n "__fish_markoff_using_subcommand ask" -l session -d 'Conversation to continue; default: one per user ("cli:<login>")' -r
complete -c markoff -n "__fish_markoff_using_subcommand ask" -l api -d 'Base URL of the daemon\'s local API (TCP). Default: from [http] listen in the config file, else http://127.0.0.1:9780. With it, actions need --token-file' -r
complete -c markoff -n "__fish_markoff_using_subcommand ask" -l socket -d 'The daemon\'s Unix socket; actions through it are done as the account running this command. Default (without --api): [http] socket of the config, /run/markoff/api.sock' -r -F
complete -c markoff -n "__fish_markoff_using_subcommand ask" -l token-file -d 'File holding a bearer token of [[http.token]], for actions over TCP (--api)' -r -F
complete -c markoff -n "__fish_markoff_using_subcommand ask" -s c -l config -d 'Config file to read [http] listen and socket from' -r -F
complete -c markoff -n "__fish_markoff_using_subcommand ask" -l json -d 'Machine-readable output (the whole reply: source, tools used, attachments)'
complete -c markoff -n "__fish_markoff_using_subcommand ask" -s h -l help -d 'Print help'
complete -c markoff -n "__fish_markoff_using_subcommand ask" -s V -l version -d 'Print version'
complete -c markoff -n "__fish_markoff_using_subcommand ack" -l api -d 'Base URL of the daemon\'s local API (TCP). Default: from [http] listen in the config file, else http://127.0.0.1:9780. With it, actions need --token-file' -r
complete -c markoff -n "__fish_markoff_using_subcommand ack" -l socket -d 'The daemon\'s Unix socket; actions through it are done as the account running this command. Default (without --api): [http] socket of the config, /run/markoff/api.sock' -r -F
complete -c markoff -n "__fish_markoff_using_subcommand ack" -l token-file -d 'File holding a bearer token of [[http.token]], for actions over TCP (--api)' -r -F
complete -c markoff -n "__fish_markoff_using_subcommand ack" -s c -l config -d 'Config file to read [http] listen and socket from' -r -F
complete -c markoff -n "__fish_markoff_using_subcommand ack" -s h -l help -d 'Print help'
complete -c markoff -n "__fish_markoff_using_subcommand ack" -s V -l version -d 'Print version'
complete -c markoff -n "__fish_markoff_using_subcommand shelve" -l api -d 'Base URL of the daemon\'s local API (TCP). Default: from [http] listen in the config file, else http://127.0.0.1:9780. With it, actions need --token-file' -r
complete -c markoff -n "__fish_markoff_using_subcommand shelve" -l socket -d 'The daemon\'s Unix socket; actions through it are done as the account running this command. Default (without --api): [http] socket of the config, /run/markoff/api.sock' -r -F
complete -c markoff -n "__fish_markoff_using_subcommand shelve" -l token-file -d 'File holding a bearer token of [[http.token]], for actions over TCP (--api)' -r -F
complete -c markoff -n "__fish_markoff_using_subcommand shelve" -s c -l config -d 'Config file to read [http] listen and socket from' -r -F
complete -c markoff -n "__fish_markoff_using_subcommand shelve" -s h -l help -d 'Print help'
complete -c markoff -n "__fish_markoff_using_subcommand shelve" -s V -l version -d 'Print version'
complete -c markoff -n "__fish_markoff_using_subcommand unshelve" -l api -d 'Base URL of the daemon\'s local API (TCP). Default: from [http] listen in the config file, else http://127.0.0.1:9780. With it, actions need --token-file' -r
complete -c markoff -n "__fish_markoff_using_subcommand unshelve" -l socket -d 'The daemon\'s Unix socket; actions through it are done as the account running this command. Default (without --api): [http] socket of the config, /run/markoff/api.sock' -r -F
complete -c markoff -n "__fish_markoff_using_subcommand unshelve" -l token-file -d 'File holding a bearer token of [[http.token]], for actions over TCP (--api)' -r -F
complete -c markoff -n "__fish_markoff_using_subcommand unshelve" -s c -l config -d 'Config file to read [http] listen and socket from' -r -F
complete -c markoff -n "__fish_markoff_using_subcommand unshelve" -s h -l help -d 'Print help'
complete -c markoff -n "__fish_markoff_using_subcommand unshelve" -s V -l version -d 'Print version'
complete -c markoff -n "__fish_markoff_using_subcommand sync; and not __fish_seen_subcommand_from status help" -s h -l help -d 'Print help'
complete -c markoff -n "__fish_markoff_using_subcommand sync; and not __fish_seen_subcommand_from status help" -s V -l version -d 'Print version'
complete -c markoff -n "__fish_markoff_using_subcommand sync; and not __fish_seen_subcommand_from status help" -f -a "status" -d 'Per stream (readings, alarm events, metadata): local and central cursor, rows and age of what waits for the centre, last success, last error, state'
complete -c markoff -n "__fish_markoff_using_subcommand sync; and not __fish_seen_subcommand_from status help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c markoff -n "__fish_markoff_using_subcommand sync; and __fish_seen_subcommand_from status" -l api -d 'Base URL of the daemon\'s local API (TCP). Default: from [http] listen in the config file, else http://127.0.0.1:9780. With it, actions need --token-file' -r
complete -c markoff -n "__fish_markoff_using_subcommand sync; and __fish_seen_subcommand_from status" -l socket -d 'The daemon\'s Unix socket; actions through it are done as the account running this command. Default (without --api): [http] socket of the config, /run/markoff/api.sock' -r -F
complete -c markoff -n "__fish_markoff_using_subcommand sync; and __fish_seen_subcommand_from status" -l token-file -d 'File holding a bearer token of [[http.token]], for actions over TCP (--api)' -r -F
complete -c markoff -n "__fish_markoff_using_subcommand sync; and __fish_seen_subcommand_from status" -s c -l config -d 'Config file to read [http] listen and socket from' -r -F
complete -c markoff -n "__fish_markoff_using_subcommand sync; and __fish_seen_subcommand_from status" -l json -d 'Machine-readable output'
complete -c markoff -n "__fish_markoff_using_subcommand sync; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help'
complete -c markoff -n "__fish_markoff_using_subcommand sync; and __fish_seen_subcommand_from status" -s V -l version -d 'Print version'
complete -c markoff -n "__fish_markoff_using_subcommand sync; and __fish_seen_subcommand_from help" -f -a "status" -d 'Per stream (readings, alarm events, metadata): local and central cursor, rows and age of what waits for the centre, last success, last error, state'
complete -c markoff -n "__fish_markoff_using_subcommand sync; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c markoff -n "__fish_markoff_using_subcommand readings" -l limit -d 'History rows to show for one sensor' -r
complete -c markoff -n "__fish_markoff_using_subcommand readings" -l api -d 'Base URL of the daemon\'s local API (TCP). Default: from [http] listen in the config file, else http://127.0.0.1:9780. With it, actions need --token-file' -r
complete -c markoff -n "__fish_markoff_using_subcommand readings" -l socket -d 'The daemon\'s Unix socket; actions through it are done as the account running this command. Default (without --api): [http] socket of the config, /run/markoff/api.sock' -r -F
complete -c markoff -n "__fish_markoff_using_subcommand readings" -l token-file -d 'File holding a bearer token of [[http.token]], for actions over TCP (--api)' -r -F
complete -c markoff -n "__fish_markoff_using_subcommand readings" -s c -l config -d 'Config file to read [http] listen and socket from' -r -F
complete -c markoff -n "__fish_markoff_using_subcommand readings" -l json -d 'Machine-readable output'
complete -c markoff -n "__fish_markoff_using_subcommand readings" -s h -l help -d 'Print help'
complete -c markoff -n "__fish_markoff_using_subcommand readings" -s V -l version -d 'Print version'
complete -c markoff -n "__fish_markoff_using_subcommand render; and not __fish_seen_subcommand_from plan chart help" -s h -l help -d 'Print help'
complete -c markoff -n "__fish_markoff_using_subcommand render; and not __fish_seen_subcommand_from plan chart help" -s V -l version -d 'Print version'
complete -c markoff -n "__fish_markoff_using_subcommand render; and not __fish_seen_subcommand_from plan chart help" -f -a "plan" -d 'Draw a floor plan: rooms coloured by a measure (with its scale), every sensor\'s value, alarms as rings in their severity\'s colour, stale values grey'
complete -c markoff -n "__fish_markoff_using_subcommand render; and not __fish_seen_subcommand_from plan chart help" -f -a "chart" -d 'Draw a sensor\'s history: its line over time, alarm limits, alarm periods, gaps'
complete -c markoff -n "__fish_markoff_using_subcommand render; and not __fish_seen_subcommand_from plan chart help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c markoff -n "__fish_markoff_using_subcommand render; and __fish_seen_subcommand_from plan" -l floor -d 'Floor id as in [[site.floor]] or the sensors\' floor label ("3", "B"), or a floor\'s name' -r
complete -c markoff -n "__fish_markoff_using_subcommand render; and __fish_seen_subcommand_from plan" -l measure -d 'What rooms are coloured by' -r -f -a "temperature\t'Air temperature (°C)'
humidity\t'Relative humidity (%)'
co2\t'CO2 concentration (ppm)'"
complete -c markoff -n "__fish_markoff_using_subcommand render; and __fish_seen_subcommand_from plan" -s o -l output -d 'PNG file to write ("-" for standard output)' -r -F
complete -c markoff -n "__fish_markoff_using_subcommand render; and __fish_seen_subcommand_from plan" -l lang -d 'Language of titles and labels: en or ru' -r
complete -c markoff -n "__fish_markoff_using_subcommand render; and __fish_seen_subcommand_from plan" -l width -d 'Picture width in pixels (320 to 4000). Default: 1200' -r
complete -c markoff -n "__fish_markoff_using_subcommand render; and __fish_seen_subcommand_from plan" -l db -d 'Draw from this buffer file (read-only) instead of asking the daemon' -r -F
complete -c markoff -n "__fish_markoff_using_subcommand render; and __fish_seen_subcommand_from plan" -l data-dir -d 'Draw from the buffer in this directory (markoff.db, as `markoff demo --data-dir` keeps it) instead of asking the daemon. [site] and the alarm rules come from --config (config/demo.toml for a demo\'s directory)' -r -F
complete -c markoff -n "__fish_markoff_using_subcommand render; and __fish_seen_subcommand_from plan" -l api -d 'Base URL of the daemon\'s local API (TCP). Default: from [http] listen in the config file, else http://127.0.0.1:9780. With it, actions need --token-file' -r
complete -c markoff -n "__fish_markoff_using_subcommand render; and __fish_seen_subcommand_from plan" -l socket -d 'The daemon\'s Unix socket; actions through it are done as the account running this command. Default (without --api): [http] socket of the config, /run/markoff/api.sock' -r -F
complete -c markoff -n "__fish_markoff_using_subcommand render; and __fish_seen_subcommand_from plan" -l token-file -d 'File holding a bearer token of [[http.token]], for actions over TCP (--api)' -r -F
complete -c markoff -n "__fish_markoff_using_subcommand render; and __fish_seen_subcommand_from plan" -s c -l config -d 'Config file to read [http] listen and socket from' -r -F
complete -c markoff -n "__fish_markoff_using_subcommand render; and __fish_seen_subcommand_from plan" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c markoff -n "__fish_markoff_using_subcommand render; and __fish_seen_subcommand_from plan" -s V -l version -d 'Print version'
complete -c markoff -n "__fish_markoff_using_subcommand render; and __fish_seen_subcommand_from chart" -l sensor -d 'Sensor id, e.g. f3.r301.temperature' -r
complete -c markoff -n "__fish_markoff_using_subcommand render; and __fish_seen_subcommand_from chart" -l since -d 'How far back ("6h", "24h", "7d"; 1m to 31d)' -r
complete -c markoff -n "__fish_markoff_using_subcommand render; and __fish_seen_subcommand_from chart" -l height -d 'Picture height in pixels (200 to 3000)' -r
complete -c markoff -n "__fish_markoff_using_subcommand render; and __fish_seen_subcommand_from chart" -s o -l output -d 'PNG file to write ("-" for standard output)' -r -F
complete -c markoff -n "__fish_markoff_using_subcommand render; and __fish_seen_subcommand_from chart" -l lang -d 'Language of titles and labels: en or ru' -r
complete -c markoff -n "__fish_markoff_using_subcommand render; and __fish_seen_subcommand_from chart" -l width -d 'Picture width in pixels (320 to 4000). Default: 1200' -r
complete -c markoff -n "__fish_markoff_using_subcommand render; and __fish_seen_subcommand_from chart" -l db -d 'Draw from this buffer file (read-only) instead of asking the daemon' -r -F
complete -c markoff -n "__fish_markoff_using_subcommand render; and __fish_seen_subcommand_from chart" -l data-dir -d 'Draw from the buffer in this directory (markoff.db, as `markoff demo --data-dir` keeps it) instead of asking the daemon. [site] and the alarm rules come from --config (config/demo.toml for a demo\'s directory)' -r -F
complete -c markoff -n "__fish_markoff_using_subcommand render; and __fish_seen_subcommand_from chart" -l api -d 'Base URL of the daemon\'s local API (TCP). Default: from [http] listen in the config file, else http://127.0.0.1:9780. With it, actions need --token-file' -r
complete -c markoff -n "__fish_markoff_using_subcommand render; and __fish_seen_subcommand_from chart" -l socket -d 'The daemon\'s Unix socket; actions through it are done as the account running this command. Default (without --api): [http] socket of the config, /run/markoff/api.sock' -r -F
complete -c markoff -n "__fish_markoff_using_subcommand render; and __fish_seen_subcommand_from chart" -l token-file -d 'File holding a bearer token of [[http.token]], for actions over TCP (--api)' -r -F
complete -c markoff -n "__fish_markoff_using_subcommand render; and __fish_seen_subcommand_from chart" -s c -l config -d 'Config file to read [http] listen and socket from' -r -F
complete -c markoff -n "__fish_markoff_using_subcommand render; and __fish_seen_subcommand_from chart" -s h -l help -d 'Print help'
complete -c markoff -n "__fish_markoff_using_subcommand render; and __fish_seen_subcommand_from chart" -s V -l version -d 'Print version'
complete -c markoff -n "__fish_markoff_using_subcommand render; and __fish_seen_subcommand_from help" -f -a "plan" -d 'Draw a floor plan: rooms coloured by a measure (with its scale), every sensor\'s value, alarms as rings in their severity\'s colour, stale values grey'
complete -c markoff -n "__fish_markoff_using_subcommand render; and __fish_seen_subcommand_from help" -f -a "chart" -d 'Draw a sensor\'s history: its line over time, alarm limits, alarm periods, gaps'
complete -c markoff -n "__fish_markoff_using_subcommand render; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c markoff -n "__fish_markoff_using_subcommand import; and not __fish_seen_subcommand_from telegraf thingsboard help" -s h -l help -d 'Print help'
complete -c markoff -n "__fish_markoff_using_subcommand import; and not __fish_seen_subcommand_from telegraf thingsboard help" -s V -l version -d 'Print version'
complete -c markoff -n "__fish_markoff_using_subcommand import; and not __fish_seen_subcommand_from telegraf thingsboard help" -f -a "telegraf" -d 'Translate a Telegraf config: [[inputs.modbus]] (register, request and metric styles) and [[inputs.mqtt_consumer]] (json, json_v2 and value data formats)'
complete -c markoff -n "__fish_markoff_using_subcommand import; and not __fish_seen_subcommand_from telegraf thingsboard help" -f -a "thingsboard" -d 'Translate a ThingsBoard IoT Gateway Modbus connector (modbus.json: master.slaves[] with timeseries and attributes)'
complete -c markoff -n "__fish_markoff_using_subcommand import; and not __fish_seen_subcommand_from telegraf thingsboard help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c markoff -n "__fish_markoff_using_subcommand import; and __fish_seen_subcommand_from telegraf" -s o -l output -d 'Write the Markoff config here instead of standard output' -r -F
complete -c markoff -n "__fish_markoff_using_subcommand import; and __fish_seen_subcommand_from telegraf" -l gateway-id -d '[gateway] id of the new config. Default: Telegraf\'s [agent] hostname, else "change-me"' -r
complete -c markoff -n "__fish_markoff_using_subcommand import; and __fish_seen_subcommand_from telegraf" -s h -l help -d 'Print help'
complete -c markoff -n "__fish_markoff_using_subcommand import; and __fish_seen_subcommand_from telegraf" -s V -l version -d 'Print version'
complete -c markoff -n "__fish_markoff_using_subcommand import; and __fish_seen_subcommand_from thingsboard" -s o -l output -d 'Write the Markoff config here instead of standard output' -r -F
complete -c markoff -n "__fish_markoff_using_subcommand import; and __fish_seen_subcommand_from thingsboard" -l gateway-id -d '[gateway] id of the new config. Default: Telegraf\'s [agent] hostname, else "change-me"' -r
complete -c markoff -n "__fish_markoff_using_subcommand import; and __fish_seen_subcommand_from thingsboard" -s h -l help -d 'Print help'
complete -c markoff -n "__fish_markoff_using_subcommand import; and __fish_seen_subcommand_from thingsboard" -s V -l version -d 'Print version'
complete -c markoff -n "__fish_markoff_using_subcommand import; and __fish_seen_subcommand_from help" -f -a "telegraf" -d 'Translate a Telegraf config: [[inputs.modbus]] (register, request and metric styles) and [[inputs.mqtt_consumer]] (json, json_v2 and value data formats)'
complete -c markoff -n "__fish_markoff_using_subcommand import; and __fish_seen_subcommand_from help" -f -a "thingsboard" -d 'Translate a ThingsBoard IoT Gateway Modbus connector (modbus.json: master.slaves[] with timeseries and attributes)'
complete -c markoff -n "__fish_markoff_using_subcommand import; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c markoff -n "__fish_markoff_using_subcommand completions" -s h -l help -d 'Print help'
complete -c markoff -n "__fish_markoff_using_subcommand completions" -s V -l version -d 'Print version'
complete -c markoff -n "__fish_markoff_using_subcommand help; and not __fish_seen_subcommand_from run validate demo status modbus alarms ask ack shelve unshelve sync readings render import completions help" -f -a "run" -d 'Run the gateway daemon (what the systemd unit starts)'
complete -c markoff -n "__fish_markoff_using_subcommand help; and not __fish_seen_subcommand_from run validate demo status modbus alarms ask ack shelve unshelve sync readings render import completions help" -f -a "validate" -d 'Check a config file: prints every mistake as file:line:col with a hint. Exits 0 when valid, 78 (EX_CONFIG) when not'
complete -c markoff -n "__fish_markoff_using_subcommand help; and not __fish_seen_subcommand_from run validate demo status modbus alarms ask ack shelve unshelve sync readings render import completions help" -f -a "demo" -d 'Run a whole simulated building through the real pipeline, with a live view. Needs no external service. Stop with q or Ctrl-C'
complete -c markoff -n "__fish_markoff_using_subcommand help; and not __fish_seen_subcommand_from run validate demo status modbus alarms ask ack shelve unshelve sync readings render import completions help" -f -a "status" -d 'Show the running daemon\'s status'
complete -c markoff -n "__fish_markoff_using_subcommand help; and not __fish_seen_subcommand_from run validate demo status modbus alarms ask ack shelve unshelve sync readings render import completions help" -f -a "modbus" -d 'Modbus commissioning: read registers with every interpretation, scan a line for unit ids, print the planned requests of a config'
complete -c markoff -n "__fish_markoff_using_subcommand help; and not __fish_seen_subcommand_from run validate demo status modbus alarms ask ack shelve unshelve sync readings render import completions help" -f -a "alarms" -d 'Show open alarms (active or awaiting acknowledgement), or every alarm with --all'
complete -c markoff -n "__fish_markoff_using_subcommand help; and not __fish_seen_subcommand_from run validate demo status modbus alarms ask ack shelve unshelve sync readings render import completions help" -f -a "ask" -d 'Ask the on-site assistant a question (or run one of its slash commands, e.g. "/status") through the running daemon. Works without the LLM too: the answer then comes from local data and says so'
complete -c markoff -n "__fish_markoff_using_subcommand help; and not __fish_seen_subcommand_from run validate demo status modbus alarms ask ack shelve unshelve sync readings render import completions help" -f -a "ack" -d 'Acknowledge an alarm, as the account running this command (through the daemon\'s socket: group markoff-operators, and an operator in [[users]] by unix_user)'
complete -c markoff -n "__fish_markoff_using_subcommand help; and not __fish_seen_subcommand_from run validate demo status modbus alarms ask ack shelve unshelve sync readings render import completions help" -f -a "shelve" -d 'Shelve an alarm: no notifications for a while (operator role required)'
complete -c markoff -n "__fish_markoff_using_subcommand help; and not __fish_seen_subcommand_from run validate demo status modbus alarms ask ack shelve unshelve sync readings render import completions help" -f -a "unshelve" -d 'Lift an alarm\'s shelving (operator role required)'
complete -c markoff -n "__fish_markoff_using_subcommand help; and not __fish_seen_subcommand_from run validate demo status modbus alarms ask ack shelve unshelve sync readings render import completions help" -f -a "sync" -d 'Sync to the central PostgreSQL'
complete -c markoff -n "__fish_markoff_using_subcommand help; and not __fish_seen_subcommand_from run validate demo status modbus alarms ask ack shelve unshelve sync readings render import completions help" -f -a "readings" -d 'Show the latest reading of every sensor, or one sensor\'s recent history'
complete -c markoff -n "__fish_markoff_using_subcommand help; and not __fish_seen_subcommand_from run validate demo status modbus alarms ask ack shelve unshelve sync readings render import completions help" -f -a "render" -d 'Draw a floor plan or a sensor\'s history chart as a PNG picture, through the running daemon, or from the buffer when the daemon does not answer (or with --db / --data-dir)'
complete -c markoff -n "__fish_markoff_using_subcommand help; and not __fish_seen_subcommand_from run validate demo status modbus alarms ask ack shelve unshelve sync readings render import completions help" -f -a "import" -d 'Translate another tool\'s config into a Markoff config: a Telegraf config ([[inputs.modbus]], [[inputs.mqtt_consumer]]) or a ThingsBoard IoT Gateway Modbus connector. Prints the config (or writes --output) and reports on stderr every setting that could not be carried over, and every one carried with a change'
complete -c markoff -n "__fish_markoff_using_subcommand help; and not __fish_seen_subcommand_from run validate demo status modbus alarms ask ack shelve unshelve sync readings render import completions help" -f -a "completions" -d 'Print a shell completion script. The Debian package installs them for bash, zsh and fish; elsewhere e.g. `markoff completions bash > ~/.local/share/bash-completion/completions/markoff`'
complete -c markoff -n "__fish_markoff_using_subcommand help; and not __fish_seen_subcommand_from run validate demo status modbus alarms ask ack shelve unshelve sync readings render import completions help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c markoff -n "__fish_markoff_using_subcommand help; and __fish_seen_subcommand_from modbus" -f -a "read" -d 'Read registers and print them raw and as every type in every byte order, so the right type and order can be picked in one look'
complete -c markoff -n "__fish_markoff_using_subcommand help; and __fish_seen_subcommand_from modbus" -f -a "scan" -d 'List the unit ids that answer on a line (an exception answer counts: a device is there)'
complete -c markoff -n "__fish_markoff_using_subcommand help; and __fish_seen_subcommand_from modbus" -f -a "holes" -d 'List the address holes the running gateway has learned per device (ranges a device answered "illegal data address" for), or forget them with --forget. Readings and alarms are left alone'
complete -c markoff -n "__fish_markoff_using_subcommand help; and __fish_seen_subcommand_from modbus" -f -a "plan" -d 'Print the read requests per cycle of every Modbus device in a config'
complete -c markoff -n "__fish_markoff_using_subcommand help; and __fish_seen_subcommand_from sync" -f -a "status" -d 'Per stream (readings, alarm events, metadata): local and central cursor, rows and age of what waits for the centre, last success, last error, state'
complete -c markoff -n "__fish_markoff_using_subcommand help; and __fish_seen_subcommand_from render" -f -a "plan" -d 'Draw a floor plan: rooms coloured by a measure (with its scale), every sensor\'s value, alarms as rings in their severity\'s colour, stale values grey'
complete -c markoff -n "__fish_markoff_using_subcommand help; and __fish_seen_subcommand_from render" -f -a "chart" -d 'Draw a sensor\'s history: its line over time, alarm limits, alarm periods, gaps'
complete -c markoff -n "__fish_markoff_using_subcommand help; and __fish_seen_subcommand_from import" -f -a "telegraf" -d 'Translate a Telegraf config: [[inputs.modbus]] (register, request and metric styles) and [[inputs.mqtt_consumer]] (json, json_v2 and value data formats)'
complete -c markoff -n "__fish_markoff_using_subcommand help; and __fish_seen_subcommand_from import" -f -a "thingsboard" -d 'Translate a ThingsBoard IoT Gateway Modbus connector (modbus.json: master.slaves[] with timeseries and attributes)'
