package gpiocdev

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// layoutProgram prints what the kernel header says, one "name<TAB>value" a line. The names
// are the keys of goLayout.
const layoutProgram = `#include <stddef.h>
#include <stdio.h>
#include <linux/gpio.h>
#define P(name, v) printf("%s\t%llu\n", name, (unsigned long long)(v))
#define OFF(s, f) P(#s "." #f, offsetof(struct s, f))
int main(void) {
	P("GPIO_MAX_NAME_SIZE", GPIO_MAX_NAME_SIZE);
	P("GPIO_V2_LINES_MAX", GPIO_V2_LINES_MAX);
	P("GPIO_V2_LINE_NUM_ATTRS_MAX", GPIO_V2_LINE_NUM_ATTRS_MAX);
	P("sizeof gpiochip_info", sizeof(struct gpiochip_info));
	OFF(gpiochip_info, name); OFF(gpiochip_info, label); OFF(gpiochip_info, lines);
	P("sizeof gpio_v2_line_values", sizeof(struct gpio_v2_line_values));
	OFF(gpio_v2_line_values, bits); OFF(gpio_v2_line_values, mask);
	P("sizeof gpio_v2_line_attribute", sizeof(struct gpio_v2_line_attribute));
	OFF(gpio_v2_line_attribute, id); OFF(gpio_v2_line_attribute, padding);
	OFF(gpio_v2_line_attribute, flags); OFF(gpio_v2_line_attribute, values);
	OFF(gpio_v2_line_attribute, debounce_period_us);
	P("sizeof gpio_v2_line_config_attribute", sizeof(struct gpio_v2_line_config_attribute));
	OFF(gpio_v2_line_config_attribute, mask);
	P("sizeof gpio_v2_line_config", sizeof(struct gpio_v2_line_config));
	OFF(gpio_v2_line_config, flags); OFF(gpio_v2_line_config, num_attrs);
	OFF(gpio_v2_line_config, padding); OFF(gpio_v2_line_config, attrs);
	P("sizeof gpio_v2_line_request", sizeof(struct gpio_v2_line_request));
	OFF(gpio_v2_line_request, offsets); OFF(gpio_v2_line_request, consumer);
	OFF(gpio_v2_line_request, config); OFF(gpio_v2_line_request, num_lines);
	OFF(gpio_v2_line_request, event_buffer_size); OFF(gpio_v2_line_request, padding);
	OFF(gpio_v2_line_request, fd);
	P("sizeof gpio_v2_line_info", sizeof(struct gpio_v2_line_info));
	OFF(gpio_v2_line_info, name); OFF(gpio_v2_line_info, consumer);
	OFF(gpio_v2_line_info, offset); OFF(gpio_v2_line_info, num_attrs);
	OFF(gpio_v2_line_info, flags); OFF(gpio_v2_line_info, attrs);
	OFF(gpio_v2_line_info, padding);
	P("sizeof gpio_v2_line_event", sizeof(struct gpio_v2_line_event));
	OFF(gpio_v2_line_event, timestamp_ns); OFF(gpio_v2_line_event, id);
	OFF(gpio_v2_line_event, offset); OFF(gpio_v2_line_event, seqno);
	OFF(gpio_v2_line_event, line_seqno); OFF(gpio_v2_line_event, padding);
	P("GPIO_GET_CHIPINFO_IOCTL", GPIO_GET_CHIPINFO_IOCTL);
	P("GPIO_V2_GET_LINEINFO_IOCTL", GPIO_V2_GET_LINEINFO_IOCTL);
	P("GPIO_V2_GET_LINE_IOCTL", GPIO_V2_GET_LINE_IOCTL);
	P("GPIO_V2_LINE_GET_VALUES_IOCTL", GPIO_V2_LINE_GET_VALUES_IOCTL);
	P("GPIO_V2_LINE_SET_VALUES_IOCTL", GPIO_V2_LINE_SET_VALUES_IOCTL);
	P("GPIO_V2_LINE_FLAG_USED", GPIO_V2_LINE_FLAG_USED);
	P("GPIO_V2_LINE_FLAG_ACTIVE_LOW", GPIO_V2_LINE_FLAG_ACTIVE_LOW);
	P("GPIO_V2_LINE_FLAG_INPUT", GPIO_V2_LINE_FLAG_INPUT);
	P("GPIO_V2_LINE_FLAG_OUTPUT", GPIO_V2_LINE_FLAG_OUTPUT);
	P("GPIO_V2_LINE_FLAG_EDGE_RISING", GPIO_V2_LINE_FLAG_EDGE_RISING);
	P("GPIO_V2_LINE_FLAG_EDGE_FALLING", GPIO_V2_LINE_FLAG_EDGE_FALLING);
	P("GPIO_V2_LINE_FLAG_OPEN_DRAIN", GPIO_V2_LINE_FLAG_OPEN_DRAIN);
	P("GPIO_V2_LINE_FLAG_OPEN_SOURCE", GPIO_V2_LINE_FLAG_OPEN_SOURCE);
	P("GPIO_V2_LINE_FLAG_BIAS_PULL_UP", GPIO_V2_LINE_FLAG_BIAS_PULL_UP);
	P("GPIO_V2_LINE_FLAG_BIAS_PULL_DOWN", GPIO_V2_LINE_FLAG_BIAS_PULL_DOWN);
	P("GPIO_V2_LINE_FLAG_BIAS_DISABLED", GPIO_V2_LINE_FLAG_BIAS_DISABLED);
	P("GPIO_V2_LINE_FLAG_EVENT_CLOCK_REALTIME", GPIO_V2_LINE_FLAG_EVENT_CLOCK_REALTIME);
	P("GPIO_V2_LINE_FLAG_EVENT_CLOCK_HTE", GPIO_V2_LINE_FLAG_EVENT_CLOCK_HTE);
	P("GPIO_V2_LINE_ATTR_ID_FLAGS", GPIO_V2_LINE_ATTR_ID_FLAGS);
	P("GPIO_V2_LINE_ATTR_ID_OUTPUT_VALUES", GPIO_V2_LINE_ATTR_ID_OUTPUT_VALUES);
	P("GPIO_V2_LINE_ATTR_ID_DEBOUNCE", GPIO_V2_LINE_ATTR_ID_DEBOUNCE);
	P("GPIO_V2_LINE_EVENT_RISING_EDGE", GPIO_V2_LINE_EVENT_RISING_EDGE);
	P("GPIO_V2_LINE_EVENT_FALLING_EDGE", GPIO_V2_LINE_EVENT_FALLING_EDGE);
	return 0;
}
`

// goLayout is what this package uses for each name layoutProgram prints.
var goLayout = map[string]uint64{
	"GPIO_MAX_NAME_SIZE":                        maxNameSize,
	"GPIO_V2_LINES_MAX":                         maxLines,
	"GPIO_V2_LINE_NUM_ATTRS_MAX":                maxAttrs,
	"sizeof gpiochip_info":                      chipInfoSize,
	"gpiochip_info.name":                        chipInfoName,
	"gpiochip_info.label":                       chipInfoLabel,
	"gpiochip_info.lines":                       chipInfoLines,
	"sizeof gpio_v2_line_values":                lineValuesSize,
	"gpio_v2_line_values.bits":                  valuesBits,
	"gpio_v2_line_values.mask":                  valuesMask,
	"sizeof gpio_v2_line_attribute":             attrSize,
	"gpio_v2_line_attribute.id":                 attrID,
	"gpio_v2_line_attribute.padding":            attrPadding,
	"gpio_v2_line_attribute.flags":              attrValue,
	"gpio_v2_line_attribute.values":             attrValue,
	"gpio_v2_line_attribute.debounce_period_us": attrValue,
	"sizeof gpio_v2_line_config_attribute":      cfgAttrSize,
	"gpio_v2_line_config_attribute.mask":        cfgAttrMask,
	"sizeof gpio_v2_line_config":                lineCfgSize,
	"gpio_v2_line_config.flags":                 lineCfgFlags,
	"gpio_v2_line_config.num_attrs":             lineCfgNAttrs,
	"gpio_v2_line_config.padding":               lineCfgPad,
	"gpio_v2_line_config.attrs":                 lineCfgAttrs,
	"sizeof gpio_v2_line_request":               reqSize,
	"gpio_v2_line_request.offsets":              reqOffsets,
	"gpio_v2_line_request.consumer":             reqConsumer,
	"gpio_v2_line_request.config":               reqConfig,
	"gpio_v2_line_request.num_lines":            reqNumLines,
	"gpio_v2_line_request.event_buffer_size":    reqEventBuffer,
	"gpio_v2_line_request.padding":              reqPadding,
	"gpio_v2_line_request.fd":                   reqFD,
	"sizeof gpio_v2_line_info":                  infoSize,
	"gpio_v2_line_info.name":                    infoName,
	"gpio_v2_line_info.consumer":                infoConsumer,
	"gpio_v2_line_info.offset":                  infoOffset,
	"gpio_v2_line_info.num_attrs":               infoNAttrs,
	"gpio_v2_line_info.flags":                   infoFlags,
	"gpio_v2_line_info.attrs":                   infoAttrs,
	"gpio_v2_line_info.padding":                 infoPadding,
	"sizeof gpio_v2_line_event":                 eventSize,
	"gpio_v2_line_event.timestamp_ns":           eventTimestamp,
	"gpio_v2_line_event.id":                     eventID,
	"gpio_v2_line_event.offset":                 eventOffset,
	"gpio_v2_line_event.seqno":                  eventSeqno,
	"gpio_v2_line_event.line_seqno":             eventLineSeqno,
	"gpio_v2_line_event.padding":                eventPadding,
	"GPIO_GET_CHIPINFO_IOCTL":                   uint64(ioctlChipInfo),
	"GPIO_V2_GET_LINEINFO_IOCTL":                uint64(ioctlLineInfo),
	"GPIO_V2_GET_LINE_IOCTL":                    uint64(ioctlGetLine),
	"GPIO_V2_LINE_GET_VALUES_IOCTL":             uint64(ioctlGetValues),
	"GPIO_V2_LINE_SET_VALUES_IOCTL":             uint64(ioctlSetValues),
	"GPIO_V2_LINE_FLAG_USED":                    flagUsed,
	"GPIO_V2_LINE_FLAG_ACTIVE_LOW":              flagActiveLow,
	"GPIO_V2_LINE_FLAG_INPUT":                   flagInput,
	"GPIO_V2_LINE_FLAG_OUTPUT":                  flagOutput,
	"GPIO_V2_LINE_FLAG_EDGE_RISING":             flagEdgeRising,
	"GPIO_V2_LINE_FLAG_EDGE_FALLING":            flagEdgeFalling,
	"GPIO_V2_LINE_FLAG_OPEN_DRAIN":              flagOpenDrain,
	"GPIO_V2_LINE_FLAG_OPEN_SOURCE":             flagOpenSource,
	"GPIO_V2_LINE_FLAG_BIAS_PULL_UP":            flagBiasPullUp,
	"GPIO_V2_LINE_FLAG_BIAS_PULL_DOWN":          flagBiasPullDown,
	"GPIO_V2_LINE_FLAG_BIAS_DISABLED":           flagBiasDisabled,
	"GPIO_V2_LINE_FLAG_EVENT_CLOCK_REALTIME":    flagClockRealtime,
	"GPIO_V2_LINE_FLAG_EVENT_CLOCK_HTE":         flagClockHTE,
	"GPIO_V2_LINE_ATTR_ID_FLAGS":                attrFlags,
	"GPIO_V2_LINE_ATTR_ID_OUTPUT_VALUES":        attrOutputValues,
	"GPIO_V2_LINE_ATTR_ID_DEBOUNCE":             attrDebounce,
	"GPIO_V2_LINE_EVENT_RISING_EDGE":            eventRising,
	"GPIO_V2_LINE_EVENT_FALLING_EDGE":           eventFalling,
}

// TestLayoutMatchesKernelHeader checks every struct size, field offset, ioctl number and
// enum value this package encodes by hand against the kernel's own header, compiled by
// gcc: an independent peer, not a second copy of the same arithmetic.
func TestLayoutMatchesKernelHeader(t *testing.T) {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc is not installed: the layout cannot be checked against <linux/gpio.h> here")
	}
	if _, err := os.Stat("/usr/include/linux/gpio.h"); err != nil {
		t.Skip("/usr/include/linux/gpio.h is missing (install linux-libc-dev): the layout cannot be checked here")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "layout.c")
	bin := filepath.Join(dir, "layout")
	require.NoError(t, os.WriteFile(src, []byte(layoutProgram), 0o600))
	out, err := exec.Command(gcc, "-Wall", "-Werror", "-o", bin, src).CombinedOutput()
	require.NoError(t, err, "gcc: %s", out)
	out, err = exec.Command(bin).Output()
	require.NoError(t, err)

	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), "\t")
		require.True(t, ok, "line %q", sc.Text())
		n, err := strconv.ParseUint(val, 10, 64)
		require.NoError(t, err)
		want, known := goLayout[name]
		require.True(t, known, "the C program prints %s, which the Go table lacks", name)
		assert.Equal(t, n, want, "%s: kernel header says %d, gpiocdev uses %d", name, n, want)
		seen[name] = true
	}
	assert.Len(t, seen, len(goLayout), "every Go value was checked")
}
