package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

// bashCompletion is urfave/cli's completion hook for bash, bound to openvpc.
const bashCompletion = `_openvpc_bash_autocomplete() {
  if [[ "${COMP_WORDS[0]}" != "source" ]]; then
    local cur opts
    COMPREPLY=()
    cur="${COMP_WORDS[COMP_CWORD]}"
    if [[ "$cur" == "-"* ]]; then
      opts=$( ${COMP_WORDS[@]:0:$COMP_CWORD} ${cur} --generate-bash-completion )
    else
      opts=$( ${COMP_WORDS[@]:0:$COMP_CWORD} --generate-bash-completion )
    fi
    COMPREPLY=( $(compgen -W "${opts}" -- ${cur}) )
    return 0
  fi
}
complete -o bashdefault -o default -o nospace -F _openvpc_bash_autocomplete openvpc
`

func completionCmd() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print the shell completion script: source <(openvpc completion bash)",
		ArgsUsage: "bash",
		Action: func(c *cli.Context) error {
			if c.Args().First() != "bash" {
				return fmt.Errorf("completion: only bash is supported")
			}
			fmt.Print(bashCompletion)
			return nil
		},
	}
}
