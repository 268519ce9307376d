package confenum

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type color string

var colors = map[color]int{"red": 1, "green": 2}

func TestUnmarshal(t *testing.T) {
	c := color("red")
	require.NoError(t, Unmarshal(&c, []byte("green"), colors, "red, green"))
	assert.Equal(t, color("green"), c)
	require.EqualError(t, Unmarshal(&c, []byte("blue"), colors, "red, green"), `"blue" is not one of red, green`)
	assert.Equal(t, color("green"), c, "a refused value leaves the key as it was")
	assert.NoError(t, Check(color("red"), colors, "red, green"))
}
