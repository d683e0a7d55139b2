// globals: the Go equivalent of tests/escape/globals.usir (see arrays.go for the conventions).
package main

type Config struct {
	verbose bool
	limit   int
}

type Registry struct {
	config *Config
	count  int
}

var currentConfig *Config
var registry *Registry
var counter int

//go:noinline
func install(limit int) {
	config := &Config{} // usir 14:3
	config.limit = limit
	currentConfig = config
	entryRegistry := &Registry{} // usir 17:3
	localConfig := &Config{}     // usir 18:3
	entryRegistry.config = localConfig
	registry = entryRegistry
}

//go:noinline
func limit() int {
	config := currentConfig
	value := config.limit
	count := counter
	count++
	counter = count
	return value
}

func main() {
	install(3)
	println(limit())
}
