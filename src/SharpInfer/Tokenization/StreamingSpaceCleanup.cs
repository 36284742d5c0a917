namespace SharpInfer.Tokenization;

/// <summary>
/// <see cref="SpaceCleanup"/> applied to a byte stream: each pass holds back a space (and the few bytes after it)
/// only until it knows whether the space goes, so the output is exactly the batch clean-up of all the bytes.
/// </summary>
internal sealed class StreamingSpaceCleanup
{
    private readonly Pass _first;

    public StreamingSpaceCleanup(Utf8Assembler sink)
    {
        var p3 = new Pass(3, null, sink);
        var p2 = new Pass(2, p3, null);
        _first = new Pass(1, p2, null);
    }

    public void Push(ReadOnlySpan<byte> bytes)
    {
        foreach (byte b in bytes) _first.Push(b);
    }

    /// <summary>End of stream: release everything held.</summary>
    public void Flush() => _first.Flush();

    public void Clear() => _first.Clear();

    private sealed class Pass(int kind, Pass? next, Utf8Assembler? sink)
    {
        private readonly byte[] _q = new byte[4];
        private int _count;

        public void Push(byte b)
        {
            _q[_count++] = b;
            Drain(final: false);
        }

        public void Flush()
        {
            Drain(final: true);
            next?.Flush();
        }

        public void Clear()
        {
            _count = 0;
            next?.Clear();
        }

        private void Emit(byte b)
        {
            if (next != null) next.Push(b);
            else sink!.Push(b);
        }

        private void Remove(int k)
        {
            for (int i = k; i < _count; i++) _q[i - k] = _q[i];
            _count -= k;
        }

        private void Drain(bool final)
        {
            while (_count > 0)
            {
                if (_q[0] != ' ') { Emit(_q[0]); Remove(1); continue; }
                var d = Decide(final);
                switch (d)
                {
                    case Decision.Wait: return;
                    case Decision.Keep: Emit((byte)' '); Remove(1); break;
                    case Decision.Drop: Remove(1); break;
                    case Decision.Apostrophe: Emit((byte)'\''); Remove(3); break;
                }
            }
        }

        private enum Decision { Wait, Keep, Drop, Apostrophe }

        // The head of the queue is a space: does it stay?
        private Decision Decide(bool final)
        {
            // looks at _q[i]; returns -1 when that byte has not arrived (yet, or ever when final)
            int At(int i) => i < _count ? _q[i] : -1;
            int x1 = At(1);
            if (x1 < 0) return final ? Decision.Keep : Decision.Wait;
            switch (kind)
            {
                case 1:
                    return SpaceCleanup.IsStop(x1) ? Decision.Drop : Decision.Keep;
                case 2:
                {
                    if (x1 != '\'') return Decision.Keep;
                    int x2 = At(2);
                    if (x2 < 0) return final ? Decision.Keep : Decision.Wait;
                    return x2 == ' ' ? Decision.Apostrophe : Decision.Keep;
                }
                default:
                {
                    if (x1 != '\'') return Decision.Keep;
                    int x2 = At(2);
                    if (x2 < 0) return final ? Decision.Keep : Decision.Wait;
                    if (x2 is 's' or 'm') return Decision.Drop;
                    if (x2 is not ('r' or 'v')) return Decision.Keep;
                    int x3 = At(3);
                    if (x3 < 0) return final ? Decision.Keep : Decision.Wait;
                    return SpaceCleanup.IsContraction(x2, x3) ? Decision.Drop : Decision.Keep;
                }
            }
        }
    }
}
